package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/ca"
	ctlevidence "github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
)

// witnessEntry is a line of `ward-agent evidence checkpoints -o json`.
type witnessEntry struct {
	Tenant  string
	Size    uint64
	Head    string
	Refused string
}

// TestWitnessCatchesARewrittenHistory runs a collector agent that witnesses the clinic's
// checkpoints, checks that the exported bundle carries its countersignatures, then rebuilds
// the controller's log with a changed record (new chain, new head, checkpoints re-signed
// with the evidence key, witness signatures deleted: a bundle of it verifies) and checks
// that the clinic's copy refuses the rewritten log and contradicts the bundle.
func TestWitnessCatchesARewrittenHistory(t *testing.T) {
	in := newInstallation(t, 2*time.Second)
	in.startController()
	in.wardctl("tenant", "create", "clinic")
	col := in.enrollCollector("collector", in.token("clinic", "--role", "collector"))
	col.start()

	witnessed := func(n int) []witnessEntry {
		var entries []witnessEntry
		waitFor(t, 30*time.Second, fmt.Sprintf("%d witnessed checkpoints", n), func() bool {
			entries = col.witnessCopy()
			return len(entries) >= n
		})
		return entries
	}
	in.token("clinic")
	in.wardctl("evidence", "export", "--tenant", "clinic", "-o", filepath.Join(in.dir, "b1"))
	witnessed(1)
	in.token("clinic")
	in.token("clinic")
	in.wardctl("evidence", "export", "--tenant", "clinic", "-o", filepath.Join(in.dir, "b2"))
	entries := witnessed(2)
	for _, e := range entries {
		if e.Refused != "" || e.Tenant != "clinic" {
			t.Fatalf("honest checkpoint refused: %+v", e)
		}
	}

	// The countersignatures reach the controller and the bundle.
	honest := filepath.Join(in.dir, "honest.tar.gz")
	waitFor(t, 30*time.Second, "countersignatures in a bundle", func() bool {
		in.wardctl("evidence", "export", "--tenant", "clinic", "-o", honest)
		out := in.wardctl("evidence", "verify", honest, "--ca", filepath.Join(in.data, "ca.pem"))
		return strings.Contains(out, col.id+" (")
	})
	entries = col.witnessCopy()
	last := entries[len(entries)-1]

	// The MSP side rewrites history while everything is stopped.
	col.run.kill(syscall.SIGTERM)
	in.ctl.kill(syscall.SIGTERM)
	in.rewriteHistory("clinic", 2)

	in.startController()
	col.start()
	in.token("clinic")
	rewritten := filepath.Join(in.dir, "rewritten.tar.gz")
	in.wardctl("evidence", "export", "--tenant", "clinic", "-o", rewritten)

	// The rewritten log is self-consistent: its bundle verifies on its own ...
	out := in.wardctl("evidence", "verify", rewritten, "--ca", filepath.Join(in.data, "ca.pem"))
	if !strings.Contains(out, ": OK") {
		t.Fatalf("the rewritten bundle should verify on its own:\n%s", out)
	}
	// ... but the clinic's witness refuses it and keeps the refusal,
	var refusal witnessEntry
	waitFor(t, 30*time.Second, "the witness to refuse the rewritten log", func() bool {
		for _, e := range col.witnessCopy() {
			if e.Refused != "" {
				refusal = e
				return true
			}
		}
		return false
	})
	if !strings.Contains(refusal.Refused, "rewritten") {
		t.Errorf("refusal reason %q", refusal.Refused)
	}
	table, err := exec.Command(filepath.Join(binDir, "ward-agent"), "evidence", "checkpoints",
		"--state-dir", col.state).Output()
	if err != nil || !strings.Contains(string(table), "REFUSED") {
		t.Errorf("ward-agent evidence checkpoints: %v\n%s", err, table)
	}
	t.Logf("the clinic's copy:\n%s", table)

	// the copy's head at its last countersigned size contradicts the bundle,
	b := readBundleFile(t, rewritten)
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(b.Files[evidence.FileCheckpoints])), "\n") {
		cp, err := evidence.ParseCheckpointLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size == last.Size {
			found = true
			if cp.Head.String() == last.Head {
				t.Errorf("checkpoint %d: the rewritten bundle agrees with the clinic's copy",
					cp.Size)
			}
		}
	}
	if !found {
		t.Errorf("the rewritten bundle has no checkpoint of size %d", last.Size)
	}
	// and the controller records the refusal in the log itself.
	waitFor(t, 30*time.Second, "the refusal recorded", func() bool {
		out := in.wardctl("-o", "json", "evidence", "list", "--tenant", "clinic",
			"--type", ctlevidence.TypeWitnessRefused)
		return strings.Contains(out, col.id)
	})
}

// enrollCollector enrolls an agent with the collector role; tokenFile must hold a token
// made with --role collector.
func (in *installation) enrollCollector(name, tokenFile string) *agent {
	in.t.Helper()
	a := &agent{in: in, name: name, state: filepath.Join(in.dir, name)}
	cmd := a.enrollCmd(tokenFile)
	cmd.Args = append(cmd.Args, "--role", "collector")
	if out, err := cmd.CombinedOutput(); err != nil {
		in.t.Fatalf("ward-agent enroll %s: %v\n%s", name, err, out)
	}
	var st struct {
		AgentID string `json:"agent_id"`
	}
	data, err := os.ReadFile(filepath.Join(a.state, "agent.json"))
	if err != nil || json.Unmarshal(data, &st) != nil || st.AgentID == "" {
		in.t.Fatalf("agent.json of %s: %v %s", name, err, data)
	}
	a.id = st.AgentID
	return a
}

// witnessCopy returns the agent's copy of the checkpoints.
func (a *agent) witnessCopy() []witnessEntry {
	a.in.t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "ward-agent"), "evidence", "checkpoints",
		"--state-dir", a.state, "-o", "json").Output()
	if err != nil {
		a.in.t.Fatalf("ward-agent evidence checkpoints: %v", err)
	}
	var entries []witnessEntry
	if err := json.Unmarshal(out, &entries); err != nil {
		a.in.t.Fatalf("copy json: %v\n%s", err, out)
	}
	return entries
}

func readBundleFile(t *testing.T, path string) *evidence.Bundle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := evidence.ReadBundle(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewriteHistory does what an attacker holding the controller's disk and evidence key
// could: it changes the subject of record seq in the stopped controller's store, rebuilds
// the chain and the head after it, re-signs every checkpoint over the new chain and
// deletes the witness signatures (see controller/internal/store/badger/evidence.go for
// the keys).
func (in *installation) rewriteHistory(tenant string, seq uint64) {
	t := in.t
	t.Helper()
	authority, err := ca.Load(in.data)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ctlevidence.LoadOrCreateKey(in.data, authority)
	if err != nil {
		t.Fatal(err)
	}
	db, err := badgerdb.Open(badgerdb.DefaultOptions(filepath.Join(in.data, "db")).
		WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	prefix := "tenant:" + tenant + ":ev:"
	recKey := func(n uint64) []byte { return fmt.Appendf(nil, "%srec:%020d", prefix, n) }
	err = db.Update(func(txn *badgerdb.Txn) error {
		chain := map[uint64]evidence.Hash{}
		prev := evidence.Hash{}
		for n := uint64(1); ; n++ {
			item, err := txn.Get(recKey(n))
			if err == badgerdb.ErrKeyNotFound {
				head, _ := json.Marshal(map[string]any{"size": n - 1, "hash": prev})
				if err := txn.Set([]byte(prefix+"head"), head); err != nil {
					return err
				}
				break
			}
			if err != nil {
				return err
			}
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			r, err := evidence.ParseBody(val[32:])
			if err != nil {
				return err
			}
			if n == seq {
				r.Subject = "rewritten-" + r.Subject
			}
			r.Prev = prev
			body := r.Body()
			prev = evidence.ChainHash(prev, evidence.LeafHash(body))
			chain[n] = prev
			if err := txn.Set(recKey(n), append(append([]byte(nil), prev[:]...), body...)); err != nil {
				return err
			}
		}
		return resignCheckpoints(txn, prefix, chain, key)
	})
	if err != nil {
		t.Fatalf("rewrite history: %v", err)
	}
}

func resignCheckpoints(txn *badgerdb.Txn, prefix string, chain map[uint64]evidence.Hash,
	key *ctlevidence.Key) error {
	it := txn.NewIterator(badgerdb.DefaultIteratorOptions)
	defer it.Close()
	var del [][]byte
	for it.Seek([]byte(prefix)); it.ValidForPrefix([]byte(prefix)); it.Next() {
		k := it.Item().KeyCopy(nil)
		switch {
		case strings.HasPrefix(string(k), prefix+"wit:"):
			del = append(del, k)
		case strings.HasPrefix(string(k), prefix+"cp:"):
			var cp store.EvidenceCheckpoint
			val, _ := it.Item().ValueCopy(nil)
			if err := json.Unmarshal(val, &cp); err != nil {
				return err
			}
			cp.Head = chain[cp.Size]
			sig, err := evidence.Sign(key.Signer, evidence.Checkpoint{Tenant: cp.Tenant,
				Size: cp.Size, Head: cp.Head, Time: cp.Time}.Text())
			if err != nil {
				return err
			}
			cp.Signature = sig
			b, _ := json.Marshal(cp)
			if err := txn.Set(k, b); err != nil {
				return err
			}
		}
	}
	for _, k := range del {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
