package deploytest

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wardsec/ward/deploytest/internal/tfcheck"
)

var update = flag.Bool("update", false, "rewrite the generated tables in the Terraform READMEs")

// terraformRoot is the repository's terraform/ directory, seen from this package.
const terraformRoot = "../terraform"

// terraformModules returns every directory under terraform/ that holds .tf files.
func terraformModules(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(terraformRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".terraform") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".tf") {
			seen[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	dirs := make([]string, 0, len(seen))
	for dir := range seen {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	return dirs
}

// TestTerraformLayout pins the modules the deployment guide relies on.
func TestTerraformLayout(t *testing.T) {
	got := strings.Join(terraformModules(t), " ")
	for _, want := range []string{
		"modules/event-queue", "modules/controller", "modules/client-vm",
		"examples/complete-deployment",
	} {
		if !strings.Contains(got, filepath.FromSlash(want)) {
			t.Errorf("terraform/%s is missing (have %s)", want, got)
		}
	}
}

// TestTerraformChecks runs every offline check on every module: the stand-in for
// `terraform fmt -check` and `terraform validate`, which needs providers.
func TestTerraformChecks(t *testing.T) {
	for _, dir := range terraformModules(t) {
		t.Run(strings.TrimPrefix(dir, terraformRoot+"/"), func(t *testing.T) {
			ps, err := tfcheck.Check(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				t.Error(p)
			}
		})
	}
}

// TestTerraformFmt runs `terraform fmt -check` as well when terraform is installed; the
// hclwrite check above is the one that always runs.
func TestTerraformFmt(t *testing.T) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed; formatting is checked by TestTerraformChecks")
	}
	cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-list=true", terraformRoot)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Errorf("terraform fmt -check: %v; files to format:\n%s", err, out.String())
	}
}

// TestTerraformReadmes checks that every module's README documents exactly its inputs and
// outputs (regenerate the tables with `go test -run TestTerraformReadmes -update`), that
// each reusable module states the HIPAA controls it implements, and that each example
// states its cost.
func TestTerraformReadmes(t *testing.T) {
	for _, dir := range terraformModules(t) {
		t.Run(strings.TrimPrefix(dir, terraformRoot+"/"), func(t *testing.T) {
			path := filepath.Join(dir, "README.md")
			readme, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := tfcheck.Load(dir)
			if err != nil {
				t.Fatal(err)
			}

			want, err := tfcheck.RenderDocs(m, readme)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if !bytes.Equal(want, readme) {
				t.Errorf("%s: inputs or outputs table out of date; run "+
					"go test ./deploytest -run TestTerraformReadmes -update", path)
			}

			for _, heading := range readmeHeadings(dir) {
				if !bytes.Contains(readme, []byte("\n"+heading)) {
					t.Errorf("%s: no %q section", path, heading)
				}
			}
		})
	}
}

func readmeHeadings(dir string) []string {
	common := []string{"## Usage", "## Inputs", "## Outputs"}
	if strings.Contains(filepath.ToSlash(dir), "/examples/") {
		return append(common, "## Cost")
	}
	return append(common, "## HIPAA")
}
