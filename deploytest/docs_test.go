package deploytest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// wardctlUse matches a wardctl command in the guide: the noun, the verb and the rest.
var wardctlUse = regexp.MustCompile("(?m)\\bwardctl ([a-z]+) ([a-z]+)([^`\\n|]*)")

// TestDeploymentGuideCommands checks that every `wardctl <noun> <verb>` the deployment
// guide tells an operator to run exists, with the flags it uses.
func TestDeploymentGuideCommands(t *testing.T) {
	guide, err := os.ReadFile("../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinaries(t, "controller/cmd/wardctl")

	matches := wardctlUse.FindAllStringSubmatch(string(guide), -1)
	if len(matches) < 5 {
		t.Fatalf("found only %d wardctl commands in the guide", len(matches))
	}
	for _, m := range matches {
		noun, verb, rest := m[1], m[2], m[3]
		help, err := exec.Command(bin+"/wardctl", noun, verb, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(help), "Usage:") {
			t.Errorf("guide uses `wardctl %s %s`, which does not exist: %v\n%s",
				noun, verb, err, help)
			continue
		}
		for _, word := range strings.Fields(rest) {
			flag, _, _ := strings.Cut(word, "=")
			if strings.HasPrefix(flag, "--") && !strings.Contains(string(help), flag+" ") {
				t.Errorf("guide uses `wardctl %s %s %s`, which has no such flag",
					noun, verb, flag)
			}
		}
	}
}
