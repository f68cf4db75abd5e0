// Package nmap is discovery's active method: it runs the nmap binary (through
// github.com/Ullaakut/nmap/v3) in two passes over a site's scanned subnets and turns each
// host it finds into a merge.Sighting.
//
// Pass one finds live hosts (ARP on the local link when privileged) and checks the
// printer ports 9100, 515 and 631 without any version probe or script, because printers
// print what is sent to them. Pass two runs on the live hosts only: service and version
// detection (--version-light), OS detection when privileged, and the NSE scripts that
// reveal a clinic's devices, with the printer ports excluded. Passive-only subnets and
// excluded addresses are passed to nmap as --exclude in both passes, so nmap itself
// refuses to send them anything.
package nmap

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
)

// ErrNotInstalled is returned by New when no nmap binary can be found.
var ErrNotInstalled = errors.New("nmap is not installed: install the nmap package " +
	"(Debian: apt-get install nmap) or set the binary path")

// Ports probed when the site sets none: remote access, directory, file, database, web,
// clinical (DICOM 104/11112/4242, HL7 MLLP 2575, Orthanc 8042) and management services.
const DefaultPorts = "21,22,23,25,53,80,88,104,135,139,389,443,445,636,1433,1521,2575," +
	"3306,3389,4242,5432,5900,8000,8042,8080,8443,11112"

// PrinterPorts are never version-probed nor scripted: raw printing (9100), LPD (515) and
// IPP (631) print whatever arrives.
const PrinterPorts = "9100,515,631"

// Scripts run in pass two.
var Scripts = []string{"snmp-sysdescr", "dicom-ping", "http-title", "ssl-cert",
	"smb-os-discovery", "banner"}

// Config configures a Scanner.
type Config struct {
	// Site says what may be probed and how fast. Required and valid.
	Site *site.Config
	// Binary is the nmap binary; empty looks "nmap" up in PATH.
	Binary string
	// Privileged enables SYN, UDP and OS detection scans (nmap as root).
	Privileged bool
	// NoDNS skips reverse DNS lookups of the hosts found.
	NoDNS bool
	// Log receives progress and warnings. Required.
	Log *slog.Logger
}

// Progress is how far a scan has come.
type Progress struct {
	Phase      string // "discovery", "services" or "done"
	HostsTotal int    // addresses the scan may probe
	HostsDone  int    // addresses probed completely
	HostsFound int    // live hosts found
}

// Scanner runs scans. It is safe for concurrent use, though one scan at a time is wise.
type Scanner struct {
	cfg    Config
	binary string
}

// New checks the configuration and finds the nmap binary; it returns ErrNotInstalled
// when there is none.
func New(cfg Config) (*Scanner, error) {
	switch {
	case cfg.Site == nil:
		return nil, errors.New("nmap scanner: no site configuration")
	case cfg.Log == nil:
		return nil, errors.New("nmap scanner: no logger")
	}
	if err := cfg.Site.Validate(); err != nil {
		return nil, fmt.Errorf("nmap scanner: %w", err)
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "nmap"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrNotInstalled, bin)
	}
	return &Scanner{cfg: cfg, binary: path}, nil
}

// Scan scans the site's subnets, calls found for every live host (as soon as nmap reports
// it, from one goroutine at a time) and progress after each pass and as hosts complete.
// It returns the live hosts' count. Cancelling ctx stops nmap and returns ctx's error.
func (s *Scanner) Scan(ctx context.Context, found func(merge.Sighting),
	progress func(Progress)) (int, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	total := s.targetCount()
	p := Progress{Phase: "discovery", HostsTotal: total}
	progress(p)
	if total == 0 {
		p.Phase = "done"
		progress(p)
		return 0, nil
	}

	live := map[netip.Addr]bool{}
	start := time.Now()
	err := s.run(ctx, s.discoveryArgs(), func(h nmaplib.Host) {
		sg, ok := s.sighting(h)
		if !ok || live[sg.Addr] {
			return
		}
		live[sg.Addr] = true
		found(sg)
	})
	if err != nil {
		return 0, err
	}
	p.HostsFound = len(live)
	p.HostsDone = total - len(live)
	s.cfg.Log.Info("nmap host discovery done", logkey.Count, len(live), "hosts_total", total,
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	progress(p)

	if len(live) > 0 {
		if err := s.services(ctx, live, found, &p, progress); err != nil {
			return len(live), err
		}
	}
	p.Phase, p.HostsDone = "done", total
	progress(p)
	return len(live), nil
}

func (s *Scanner) services(ctx context.Context, live map[netip.Addr]bool,
	found func(merge.Sighting), p *Progress, progress func(Progress)) error {
	p.Phase = "services"
	progress(*p)
	targets := make([]string, 0, len(live))
	for a := range live {
		targets = append(targets, a.String())
	}

	start := time.Now()
	err := s.run(ctx, s.serviceArgs(targets), func(h nmaplib.Host) {
		sg, ok := s.sighting(h)
		if !ok {
			return
		}
		found(sg)
		p.HostsDone++
		progress(*p)
	})
	if err != nil {
		return err
	}
	s.cfg.Log.Info("nmap service scan done", logkey.Count, len(live),
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	return nil
}

// targetCount is the number of addresses the scan may probe.
func (s *Scanner) targetCount() int {
	n := 0
	for _, p := range s.cfg.Site.ScanPrefixes() {
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			if !s.cfg.Site.Untouchable(a) {
				n++
			}
		}
	}
	return n
}

// common returns the options both passes share: rate, exclusions, DNS.
func (s *Scanner) common() []string {
	args := []string{"-T4", "--max-rate", strconv.Itoa(s.cfg.Site.ProbeRate),
		"--stats-every", "5s"}
	if excl := s.exclusions(); len(excl) > 0 {
		args = append(args, "--exclude", strings.Join(excl, ","))
	}
	if s.cfg.NoDNS {
		args = append(args, "-n")
	}
	if s.cfg.Privileged {
		args = append(args, "--privileged")
	} else {
		args = append(args, "--unprivileged")
	}
	return args
}

func (s *Scanner) exclusions() []string {
	var out []string
	for _, p := range s.cfg.Site.PassivePrefixes() {
		out = append(out, p.String())
	}
	for _, p := range s.cfg.Site.ExcludedPrefixes() {
		out = append(out, p.String())
	}
	return out
}

// discoveryArgs: find live hosts and look at the printer ports without probing them.
func (s *Scanner) discoveryArgs() []string {
	args := append(s.common(), "-p", "T:"+PrinterPorts, "--max-retries", "2")
	if s.cfg.Privileged {
		args = append(args, "-sS")
	} else {
		args = append(args, "-sT")
	}
	return append(args, s.cfg.Site.Subnets...)
}

// serviceArgs: versions, OS and scripts on the live hosts, printer ports excluded.
func (s *Scanner) serviceArgs(targets []string) []string {
	ports := s.cfg.Site.Ports
	if ports == "" {
		ports = DefaultPorts
	}
	args := append(s.common(), "-Pn", "-sV", "--version-light",
		"--exclude-ports", PrinterPorts, "--script", strings.Join(Scripts, ","),
		"--script-timeout", "20s", "--host-timeout", "5m")
	if s.cfg.Privileged {
		args = append(args, "-sS", "-sU", "-p", "T:"+ports+",U:161", "-O", "--osscan-limit")
	} else {
		args = append(args, "-sT", "-p", "T:"+ports)
	}
	return append(args, targets...)
}

// run runs nmap with args and calls host for every host element as nmap writes it.
func (s *Scanner) run(ctx context.Context, args []string, host func(nmaplib.Host)) error {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var decodeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		decodeErr = decodeHosts(pr, host, s.cfg.Log)
		_, _ = io.Copy(io.Discard, pr) // never block nmap's output
	}()

	s.cfg.Log.Debug("nmap starting", "args", strings.Join(args, " "))
	scanner, err := nmaplib.NewScanner(ctx, nmaplib.WithBinaryPath(s.binary),
		nmaplib.WithCustomArguments(args...))
	if err != nil {
		pw.Close()
		wg.Wait()
		return fmt.Errorf("nmap: %w", err)
	}
	_, warnings, err := scanner.Streamer(pw).Run()
	pw.Close()
	wg.Wait()

	if ctx.Err() != nil {
		return fmt.Errorf("nmap: %w", ctx.Err())
	}
	if warnings != nil {
		for _, w := range *warnings {
			s.cfg.Log.Warn("nmap warning", logkey.Reason, w)
		}
	}
	if err != nil {
		return fmt.Errorf("nmap: %w", err)
	}
	if decodeErr != nil {
		return fmt.Errorf("nmap: read output: %w", decodeErr)
	}
	return nil
}

// decodeHosts reads nmap's XML as it is written and calls host for every host element,
// logging task progress on the way.
func decodeHosts(r io.Reader, host func(nmaplib.Host), log *slog.Logger) error {
	dec := xml.NewDecoder(r)
	dec.Strict = false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "host":
			var h nmaplib.Host
			if err := dec.DecodeElement(&h, &se); err != nil {
				return err
			}
			host(h)
		case "taskprogress":
			var tp nmaplib.TaskProgress
			if err := dec.DecodeElement(&tp, &se); err == nil {
				log.Info("nmap progress", "task", tp.Task, "percent", tp.Percent)
			}
		}
	}
}
