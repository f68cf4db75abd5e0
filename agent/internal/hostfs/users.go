package hostfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Account is one line of the host's /etc/passwd.
type Account struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// Accounts parses the host's /etc/passwd. Malformed lines are skipped.
func (f *FS) Accounts() ([]Account, error) {
	data, err := f.ReadFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []Account
	for _, fields := range colonLines(data, 7) {
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Account{Name: fields[0], UID: uid, GID: gid, Home: fields[5],
			Shell: fields[6]})
	}
	return out, nil
}

// LookupUID returns the UID of account name on the host.
func (f *FS) LookupUID(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	accts, err := f.Accounts()
	if err != nil {
		return 0, err
	}
	for _, a := range accts {
		if a.Name == name {
			return a.UID, nil
		}
	}
	return 0, fmt.Errorf("no user %q on the host", name)
}

// LookupGID returns the GID of group name from the host's /etc/group.
func (f *FS) LookupGID(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	data, err := f.ReadFile("/etc/group")
	if err != nil {
		return 0, err
	}
	for _, fields := range colonLines(data, 3) {
		if fields[0] == name {
			return strconv.Atoi(fields[2])
		}
	}
	return 0, fmt.Errorf("no group %q on the host", name)
}

// UserName returns the name of uid on the host, or the number when unknown.
func (f *FS) UserName(uid int) string {
	accts, _ := f.Accounts()
	for _, a := range accts {
		if a.UID == uid {
			return a.Name
		}
	}
	return strconv.Itoa(uid)
}

// colonLines splits colon-separated lines with at least n fields, skipping comments.
func colonLines(data []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) >= n {
			out = append(out, fields)
		}
	}
	return out
}
