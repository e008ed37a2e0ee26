// kstatus-probe prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute,
// the library Flux, kpt and cli-utils wait with) says about each object on stdin.
//
// Input: a stream of JSON objects (one or more). Output: one JSON line per object,
// {"status": "Current", "message": "..."}, in the same order. Built and cached by
// hack/kstatus-probe.sh; the tests run it to prove the Session's conditions read right.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	dec.UseNumber()
	out := json.NewEncoder(os.Stdout)
	for {
		var obj map[string]interface{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus-probe: reading JSON:", err)
			os.Exit(2)
		}
		u := &unstructured.Unstructured{Object: numbers(obj).(map[string]interface{})}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus-probe: status.Compute:", err)
			os.Exit(1)
		}
		if err := out.Encode(verdict{Status: res.Status.String(), Message: res.Message}); err != nil {
			os.Exit(1)
		}
	}
}

// numbers turns json.Number into int64 (or float64) as the API machinery's decoder does,
// so that metadata.generation and status.observedGeneration compare as integers.
func numbers(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, e := range t {
			t[k] = numbers(e)
		}
		return t
	case []interface{}:
		for i, e := range t {
			t[i] = numbers(e)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}
