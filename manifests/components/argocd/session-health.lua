-- Argo CD health of an rdev.io Session, from its phase and its kstatus conditions
-- (Reconciling, Stalled, Ready), never from a list of reasons: a reason added later
-- reads right without an edit here. It judges as kstatus does (what Flux waits on).
local function conditions(status)
  local byType = {}
  for _, c in ipairs(status.conditions or {}) do
    byType[c.type] = c
  end
  return byType
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "Pending deletion"}
end
local status = obj.status
if status == nil or status.phase == nil then
  return {status = "Progressing", message = "Waiting for the operator"}
end
if status.observedGeneration ~= nil and obj.metadata ~= nil
    and obj.metadata.generation ~= nil
    and status.observedGeneration ~= obj.metadata.generation then
  return {status = "Progressing", message = "Waiting for the operator to see the latest spec"}
end
local c = conditions(status)
local summary = c.Reconciling or c.Stalled or c.Ready or {}
local message = status.phase .. ": " .. (summary.message or "")
if c.Stalled ~= nil and c.Stalled.status == "True" then
  return {status = "Degraded", message = message}
end
if c.Reconciling ~= nil and c.Reconciling.status == "True" then
  return {status = "Progressing", message = message}
end
if status.phase == "Ended" or status.phase == "Expired" then
  return {status = "Healthy", message = message}
end
if c.Ready ~= nil and c.Ready.status == "True" then
  return {status = "Healthy", message = message}
end
return {status = "Progressing", message = message}
