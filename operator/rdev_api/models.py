"""The Session API as pydantic models: the one source of the CRD schema.

``crd.py`` renders ``crds/`` from these models, and the operator parses every
Session with them, so the API server and the operator hold the same rules.
Rules that need the old object (immutability, one-way checkin) exist only as
CEL transition rules in the CRD.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .durations import MAX_EXPIRES_IN_NS, duration_ns, parse_duration
from .names import PREVIEW_PORT
from .refnames import MAX_REF_LENGTH, ref_name_problems

DNS1123_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1035_LABEL_RE = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
MAX_SESSION_NAME = 55  # "<name>-preview" must stay a valid Service name (63)


def _ref_field(description: str) -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=MAX_REF_LENGTH,
        description=description,
        json_schema_extra={"x-rdev-ref-name": True},
    )


class Checkin(BaseModel):
    """Ends the session; once set it cannot be removed or changed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    skip_review: bool = Field(
        default=False,
        alias="skipReview",
        description="Do not request a review of the session's branch.",
    )
    auto_merge: bool = Field(
        default=False,
        alias="autoMerge",
        description="Ask the review to merge the branch automatically once approved.",
    )


class SessionSpec(BaseModel):
    """What the session should be; written by people and GitOps tools, never by the operator."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    project: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL_RE,
        description=(
            "The project whose pod hosts the session: a pod in the Session's namespace"
            " labelled rdev.io/project=<project>. Immutable."
        ),
    )
    container: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL_RE,
        description=(
            "The container to exec into. Default: the pod's"
            " kubectl.kubernetes.io/default-container annotation, else its first container."
            " Immutable."
        ),
    )
    branch: str | None = _ref_field(
        "An existing branch to check out. Exactly one of branch and newBranch. Immutable."
    )
    new_branch: str | None = Field(
        default=None,
        alias="newBranch",
        min_length=1,
        max_length=MAX_REF_LENGTH,
        description="A branch to create. Exactly one of branch and newBranch. Immutable.",
        json_schema_extra={"x-rdev-ref-name": True},
    )
    from_ref: str | None = Field(
        default=None,
        alias="fromRef",
        min_length=1,
        max_length=MAX_REF_LENGTH,
        description=(
            "Where newBranch starts; only with newBranch. Default: the repository's"
            " default branch on origin. Immutable."
        ),
        json_schema_extra={"x-rdev-ref-name": True},
    )
    feature_slug: str | None = Field(
        default=None,
        alias="featureSlug",
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL_RE,
        description="Recorded as label rdev.io/feature on what the operator creates.",
    )
    expires_in: str = Field(
        default="24h",
        alias="expiresIn",
        max_length=32,
        description=(
            "How long the session lives after its creation: a Go duration (90m, 24h,"
            " 1h30m) or whole days (7d); at most 30 days. Change it to extend or shorten."
        ),
    )
    idle_timeout: str | None = Field(
        default=None,
        alias="idleTimeout",
        max_length=32,
        description=(
            "End the session (phase Expired, reason IdleTimeout) after this long without"
            " activity: no change in the worktree (files, commits, branch) and no output"
            " from the web UI. Same syntax and limit as expiresIn. Absent: no idle stop."
        ),
    )
    web_ui: bool = Field(
        default=False,
        alias="webUI",
        description="Run the browser coding UI inside the project pod.",
    )
    preview_port: int = Field(
        default=PREVIEW_PORT,
        alias="previewPort",
        ge=1,
        le=65535,
        description="The port of the app preview in the pod (used while the web UI is off).",
    )
    credential: bool = Field(
        default=False,
        description=(
            "Give the session its own credential: a kubeconfig in the Secret named in"
            " status.credentialSecret that may read this Session and exec into its pod only,"
            " revoked when the session ends. May be set at creation or later; cannot be"
            " unset while the session is Active."
        ),
    )
    checkin: Checkin | None = Field(
        default=None,
        description=(
            "Setting it ends the session (checked in). One-way: once set it cannot be"
            " removed or changed."
        ),
    )

    @field_validator("branch", "new_branch", "from_ref")
    @classmethod
    def _valid_ref(cls, value: str | None) -> str | None:
        if value is not None:
            problems = ref_name_problems(value)
            if problems:
                raise ValueError("not a valid git branch name: " + "; ".join(problems))
        return value

    @field_validator("expires_in", "idle_timeout")
    @classmethod
    def _valid_expiry(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return value
        name = "expiresIn" if info.field_name == "expires_in" else "idleTimeout"
        # Nanoseconds, as the API server's CEL duration() counts them.
        ns = duration_ns(value)
        if ns > MAX_EXPIRES_IN_NS:
            raise ValueError(f"{name} must be at most 30 days (30d or 720h)")
        if ns <= 0:
            raise ValueError(f"{name} must be longer than zero")
        return value

    @model_validator(mode="after")
    def _one_branch(self) -> SessionSpec:
        if (self.branch is None) == (self.new_branch is None):
            raise ValueError("exactly one of branch or newBranch must be set")
        if self.from_ref is not None and self.new_branch is None:
            raise ValueError("fromRef may only be set together with newBranch")
        return self

    @property
    def expires_after(self) -> timedelta:
        return parse_duration(self.expires_in)

    @property
    def idle_after(self) -> timedelta | None:
        return parse_duration(self.idle_timeout) if self.idle_timeout else None

    @property
    def wanted_branch(self) -> str:
        return self.new_branch or self.branch or ""


class Phase(StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    ACTIVE = "Active"
    ENDING = "Ending"
    ENDED = "Ended"
    EXPIRED = "Expired"
    FAILED = "Failed"


# The phases of a Session that has ended: the one set (members compare equal to plain strings).
TERMINAL_PHASES = frozenset({Phase.ENDED, Phase.EXPIRED})


class WebUIState(StrEnum):
    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    FAILED = "Failed"


class Condition(BaseModel):
    """A Kubernetes condition (metav1.Condition)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(description="Type of the condition, e.g. Ready.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: str | None = Field(
        default=None,
        alias="lastTransitionTime",
        description="When the status last flipped.",
    )
    observed_generation: int | None = Field(
        default=None,
        alias="observedGeneration",
        description="The .metadata.generation the condition was set for.",
    )


class Review(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    requested: bool = Field(description="A review of the branch was requested at checkin.")
    auto_merge: bool = Field(
        alias="autoMerge", description="The review should merge automatically once approved."
    )
    pushed: bool | None = Field(
        default=None,
        description=(
            "The session's branch (its commits, never uncommitted changes) was pushed to the"
            " repository's origin at checkin; false when the push failed (see the Events)."
        ),
    )
    commit: str | None = Field(default=None, description="The commit pushed for review.")
    branch: str | None = Field(default=None, description="The branch pushed for review.")


class Changes(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    uncommitted_files: int = Field(
        alias="uncommittedFiles", description="Tracked files with uncommitted changes."
    )
    untracked_files: int = Field(alias="untrackedFiles", description="Untracked files.")
    unpushed_commits: int = Field(
        alias="unpushedCommits", description="Commits on the branch that no remote has."
    )
    checked_at: str | None = Field(
        default=None, alias="checkedAt", description="When these figures were taken."
    )


class SessionStatus(BaseModel):
    """What the operator observed and did; written only by the operator."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    phase: Phase | None = Field(default=None, description="Where the session is in its life.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Reconciling, Stalled and per-part conditions."
    )
    observed_generation: int | None = Field(
        default=None,
        alias="observedGeneration",
        description="The .metadata.generation this status was computed for.",
    )
    pod_name: str | None = Field(
        default=None, alias="podName", description="The project pod hosting the session."
    )
    container: str | None = Field(default=None, description="The container exec'd into.")
    checkout_path: str | None = Field(
        default=None, alias="checkoutPath", description="The worktree's path inside the pod."
    )
    branch: str | None = Field(default=None, description="The branch checked out.")
    commit: str | None = Field(default=None, description="HEAD of the checkout.")
    clone_url: str | None = Field(
        default=None,
        alias="cloneURL",
        description=(
            "rdev://<namespace>/<name> while the session is Active: git clone, fetch and"
            " push it through the API server (the git-remote-rdev helper of the plugin)."
        ),
    )
    service_name: str | None = Field(
        default=None, alias="serviceName", description="The preview Service."
    )
    service_port: int | None = Field(
        default=None, alias="servicePort", description="The port the preview Service exposes."
    )
    preview_url: str | None = Field(
        default=None, alias="previewURL", description="Where to open the preview."
    )
    web_ui: WebUIState | None = Field(
        default=None, alias="webUI", description="Stopped, Starting, Running or Failed."
    )
    web_ui_restarts: int | None = Field(
        default=None,
        alias="webUIRestarts",
        description="How often the operator restarted a web UI that had died.",
    )
    expires_at: str | None = Field(
        default=None, alias="expiresAt", description="creationTimestamp + expiresIn."
    )
    ended_at: str | None = Field(
        default=None, alias="endedAt", description="When the session ended."
    )
    last_activity_at: str | None = Field(
        default=None,
        alias="lastActivityAt",
        description=(
            "When activity was last seen: a change in the worktree or web UI output,"
            " measured with the workspace state; the idle timeout counts from here."
        ),
    )
    expires_soon: bool | None = Field(
        default=None,
        alias="expiresSoon",
        description=(
            "True from RDEV_EXPIRY_WARNING before expiresAt or the idle deadline until"
            " the deadline moves away (an ExpiringSoon Warning Event is posted once)."
        ),
    )
    created_by: str | None = Field(
        default=None,
        alias="createdBy",
        description="Who created the Session (the rdev.io/created-by annotation).",
    )
    review: Review | None = Field(default=None, description="Set at checkin unless skipReview.")
    provisioning_since: str | None = Field(
        default=None,
        alias="provisioningSince",
        description="When provisioning started; the progress deadline counts from here.",
    )
    provisioning_step: str | None = Field(
        default=None,
        alias="provisioningStep",
        description="The provisioning step in progress (reported when the deadline passes).",
    )
    changes: Changes | None = Field(
        default=None, description="What is at stake in the worktree, refreshed periodically."
    )
    credential_secret: str | None = Field(
        default=None,
        alias="credentialSecret",
        description=(
            "The Secret (key kubeconfig) holding the session's credential (spec.credential);"
            " deleted, and the credential revoked, when the session ends."
        ),
    )

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)
