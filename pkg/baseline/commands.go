package baseline

// CommandSpec is one entry of the command allowlist: a fixed program and arguments whose
// output a command test examines. The program is resolved under the host root.
type CommandSpec struct {
	Path string   // absolute path of the program on the host
	Args []string // fixed arguments
	// Summary says what the output is, for operators.
	Summary string
}

// Commands is the allowlist of commands a baseline may name: the agent runs nothing else
// for a check, and only with these arguments. The map must not be modified.
var Commands = map[string]CommandSpec{
	"lsblk-types": {
		Path: "/usr/bin/lsblk", Args: []string{"-rno", "TYPE"},
		Summary: "block device types, one per line (crypt marks a LUKS mapping)",
	},
	"sestatus": {
		Path: "/usr/sbin/getenforce", Summary: "SELinux mode: Enforcing, Permissive or Disabled",
	},
	"apt-security-pending": {
		Path: "/usr/lib/update-notifier/apt-check", Args: []string{"--human-readable"},
		Summary: "pending updates and how many are security updates",
	},
	"aa-enabled": {
		Path: "/usr/bin/aa-enabled", Summary: "whether AppArmor is enabled (Yes/No)",
	},
}
