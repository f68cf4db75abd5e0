// Package checkstest prepares host trees for tests of checks, actions, drift and
// commands: a Debian server that meets every hipaa-v1 check that applies to it, with
// service and package state in the simulated provider's file.
package checkstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
)

// File is one file of a prepared tree.
type File struct {
	Mode    os.FileMode
	Content string
}

// Write writes files (host path -> File) under root, creating directories.
func Write(t testing.TB, root string, files map[string]File) {
	t.Helper()
	if err := writeFiles(root, files); err != nil {
		t.Fatal(err)
	}
}

func writeFiles(root string, files map[string]File) error {
	for p, f := range files {
		real := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
			return err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(real, []byte(f.Content), mode); err != nil {
			return err
		}
		if err := os.Chmod(real, mode); err != nil {
			return err
		}
	}
	return nil
}

// Debian returns the root of a fresh compliant Debian host tree in a temporary directory.
func Debian(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := WriteDebian(root); err != nil {
		t.Fatal(err)
	}
	return root
}

// WriteDebian writes the compliant Debian host tree under root, an existing directory,
// for programs that prepare trees outside tests (the hosttree command of demos and
// end-to-end tests).
func WriteDebian(root string) error {
	if err := writeFiles(root, debianFiles); err != nil {
		return fmt.Errorf("write host tree: %w", err)
	}
	fsys, err := hostfs.New(root)
	if err != nil {
		return fmt.Errorf("write host tree: %w", err)
	}
	on := svcpkg.SimService{Active: true, Enabled: true}
	err = svcpkg.SaveSim(fsys, svcpkg.SimState{
		Services: map[string]svcpkg.SimService{
			"sshd": on, "auditd": on, "rsyslog": on, "systemd-timesyncd": on,
			"apparmor": on, "systemd-journald": on, "ufw": on,
		},
		Packages: map[string]string{
			"auditd": "1:3.0.9-1", "unattended-upgrades": "2.9.1+nmu3",
			"sudo": "1.9.13p3-1+deb12u1", "openssh-server": "1:9.2p1-2+deb12u3",
		},
	})
	if err != nil {
		return fmt.Errorf("write host tree: %w", err)
	}
	return nil
}

var debianFiles = map[string]File{
	"/etc/os-release": {Content: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"},
	"/etc/ssh/sshd_config": {Mode: 0o600, Content: `# Debian's file, hardened
Include /etc/ssh/sshd_config.d/*.conf
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding no
Subsystem sftp /usr/lib/openssh/sftp-server
Match User backup
    PasswordAuthentication yes
`},
	"/etc/ssh/sshd_config.d/50-ward.conf": {Mode: 0o600, Content: `ClientAliveInterval 300
ClientAliveCountMax 3
MaxAuthTries 4
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
`},
	"/etc/ssh/ssh_host_ed25519_key": {Mode: 0o600, Content: "not a real key\n"},
	"/etc/passwd": {Content: `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
alice:x:1000:1000:Alice Admin:/home/alice:/bin/bash
bob:x:1001:1001:Bob Tech:/home/bob:/bin/bash
`},
	"/etc/shadow": {Mode: 0o640, Content: `root:$6$abc$hash:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
sshd:!:19000::::::
alice:$6$def$hash:19000:0:365:7:::
bob:$6$ghi$hash:19000:0:365:7:::
`},
	"/etc/group":                   {Content: "root:x:0:\nshadow:x:42:\nalice:x:1000:\nbob:x:1001:\n"},
	"/etc/gshadow":                 {Mode: 0o640, Content: "root:*::\nshadow:*::\n"},
	"/etc/sudoers":                 {Mode: 0o440, Content: "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n"},
	"/etc/login.defs":              {Content: "MAIL_DIR /var/mail\nPASS_MAX_DAYS\t365\nPASS_MIN_DAYS 1\n"},
	"/etc/profile.d/ward-tmout.sh": {Content: "TMOUT=900\nreadonly TMOUT\nexport TMOUT\n"},
	"/etc/audit/auditd.conf":       {Mode: 0o640, Content: "log_file = /var/log/audit/audit.log\nmax_log_file_action = keep_logs\n"},
	"/etc/audit/rules.d/50-ward-identity.rules": {Mode: 0o640, Content: `-w /etc/passwd -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/sudoers -p wa -k privilege
-w /etc/ssh/sshd_config -p wa -k sshd
`},
	"/etc/systemd/journald.conf":                      {Content: "[Journal]\nStorage=persistent\n"},
	"/etc/rsyslog.conf":                               {Content: "module(load=\"imuxsock\")\n*.* /var/log/syslog\n"},
	"/etc/rsyslog.d/90-forward.conf":                  {Content: "*.* @@logs.msp.example:6514\n"},
	"/etc/logrotate.conf":                             {Content: "weekly\nrotate 13\ncreate\n"},
	"/etc/apt/apt.conf.d/20auto-upgrades":             {Content: "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n"},
	"/etc/ufw/ufw.conf":                               {Content: "ENABLED=yes\nLOGLEVEL=low\n"},
	"/etc/modprobe.d/ward.conf":                       {Content: "install usb-storage /bin/false\ninstall dccp /bin/false\n"},
	"/etc/crypttab":                                   {Content: "# <target> <source> <key> <options>\ncryptroot UUID=0b1c-44 none luks,discard\n"},
	"/etc/ssl/openssl.cnf":                            {Content: "[system_default_sect]\nMinProtocol = TLSv1.2\n"},
	"/var/lib/aide/aide.db":                           {Mode: 0o600, Content: "aide database\n"},
	"/etc/ward/backup.marker":                         {Content: "restic to s3, nightly\n"},
	"/usr/lib/update-notifier/apt-check":              {Mode: 0o755, Content: "#!/bin/sh\necho '0 updates can be applied immediately.'\n"},
	"/proc/sys/net/ipv4/ip_forward":                   {Content: "0\n"},
	"/proc/sys/net/ipv4/conf/all/accept_redirects":    {Content: "0\n"},
	"/proc/sys/net/ipv4/conf/all/accept_source_route": {Content: "0\n"},
	"/proc/sys/net/ipv4/tcp_syncookies":               {Content: "1\n"},
	"/proc/sys/kernel/randomize_va_space":             {Content: "2\n"},
	"/proc/modules":                                   {Content: "ext4 1007616 1 - Live 0x0000000000000000\nusbcore 348160 0 - Live 0x0\n"},
	"/proc/mounts": {Content: `/dev/mapper/cryptroot / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0
`},
	"/proc/net/tcp": {Content: `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0019 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`},
	"/proc/net/tcp6": {Content: `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`},
}
