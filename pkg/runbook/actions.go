package runbook

import "sort"

// Action names: the actions compiled into the agent. A runbook may use no others.
const (
	ActionEnsureLine           = "ensure_line"
	ActionEnsureKeyValue       = "ensure_key_value"
	ActionSetMode              = "set_mode"
	ActionRestoreFile          = "restore_file"
	ActionRestartService       = "restart_service"
	ActionReloadService        = "reload_service"
	ActionEnableService        = "enable_service"
	ActionDisableService       = "disable_service"
	ActionSetSysctl            = "set_sysctl"
	ActionApplySecurityUpdates = "apply_security_updates"
	ActionLockAccount          = "lock_account"
	ActionRotateCertificate    = "rotate_certificate"
	ActionShell                = "shell"
	// ActionBootstrapAgent is a collector's: install an agent on a device over SSH.
	ActionBootstrapAgent = "bootstrap_agent"
	// ActionEvaluateBaseline evaluates the baseline now and reports (an operator's
	// `wardctl check run`).
	ActionEvaluateBaseline = "evaluate_baseline"
)

// ActionSpec describes an action's parameters, for validation on both sides.
type ActionSpec struct {
	Summary  string   // one line for operators
	Required []string // parameters that must be present and non-empty
	Optional []string // parameters that may be present
}

// Actions describes every action the agent knows. The agent's actions package implements
// exactly these names (its tests check it). The map must not be modified.
var Actions = map[string]ActionSpec{
	ActionEnsureLine: {
		Summary:  "ensure a line is present in a file, replacing the first line matching `match`",
		Required: []string{"path", "line"},
		Optional: []string{"match", "mode", "create"},
	},
	ActionEnsureKeyValue: {
		Summary: "ensure a key has a value in a configuration file " +
			"(syntax sshd, space or equals); other occurrences are commented out",
		Required: []string{"path", "key", "value"},
		Optional: []string{"syntax", "mode", "create"},
	},
	ActionSetMode: {
		Summary:  "set the mode and optionally owner and group of a file or glob",
		Required: []string{"path", "mode"},
		Optional: []string{"owner", "group", "missing_ok"},
	},
	ActionRestoreFile: {
		Summary:  "write a file managed by the baseline with its content, mode and owner",
		Required: []string{"path"},
	},
	ActionRestartService: {Summary: "restart a service", Required: []string{"service"}},
	ActionReloadService:  {Summary: "reload a service", Required: []string{"service"}},
	ActionEnableService: {
		Summary: "enable a service at boot and start it", Required: []string{"service"},
	},
	ActionDisableService: {
		Summary: "disable a service at boot and stop it", Required: []string{"service"},
	},
	ActionSetSysctl: {
		Summary:  "set a kernel parameter now and persistently under /etc/sysctl.d",
		Required: []string{"key", "value"},
		Optional: []string{"file"},
	},
	ActionApplySecurityUpdates: {Summary: "install pending security updates"},
	ActionLockAccount: {
		Summary: "lock a local account's password", Required: []string{"user"},
	},
	ActionRotateCertificate: {
		Summary: "renew the agent's certificate now and wait until the new one is in place",
	},
	ActionEvaluateBaseline: {
		Summary: "evaluate the baseline now and report the checks whose state changed, " +
			"or every check with full: \"true\"",
		Optional: []string{"full"},
	},
	ActionShell: {
		Summary:  "run a shell script; refused unless the agent's configuration enables it",
		Required: []string{"script"},
	},
	ActionBootstrapAgent: {
		Summary: "collector only: install, configure and start an agent on a device over " +
			"SSH with a one-time enrollment token",
		Required: []string{"address", "token"},
		Optional: []string{"device_id", "user", "root", "init"},
	},
}

// ActionNames returns the names of Actions, sorted.
func ActionNames() []string {
	names := make([]string, 0, len(Actions))
	for n := range Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
