package checks

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wardsec/ward/pkg/baseline"
)

// expect returns "" when val meets x, else why not.
func (e *Evaluator) expect(x baseline.Expect, val string) string {
	switch {
	case x.Equals != "" && !strings.EqualFold(val, x.Equals):
		return fmt.Sprintf("value %q, want %q", val, x.Equals)
	case x.NotEquals != "" && strings.EqualFold(val, x.NotEquals):
		return fmt.Sprintf("value must not be %q", val)
	case len(x.In) > 0 && !inFold(x.In, val):
		return fmt.Sprintf("value %q, want one of %s", val, strings.Join(x.In, ", "))
	}
	if x.Matches != "" {
		if re, err := e.re(x.Matches); err != nil || !re.MatchString(val) {
			return fmt.Sprintf("value %q does not match %s", val, x.Matches)
		}
	}
	if x.NotMatches != "" {
		if re, err := e.re(x.NotMatches); err != nil || re.MatchString(val) {
			return fmt.Sprintf("value %q matches forbidden %s", val, x.NotMatches)
		}
	}
	if x.Min == nil && x.Max == nil {
		return ""
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
	switch {
	case err != nil:
		return fmt.Sprintf("value %q is not a number", val)
	case x.Min != nil && n < *x.Min:
		return fmt.Sprintf("value %v is below %v", n, *x.Min)
	case x.Max != nil && n > *x.Max:
		return fmt.Sprintf("value %v is above %v", n, *x.Max)
	}
	return ""
}

func inFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
