package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/logtest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		runKillChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, dir string, maxBytes, segBytes int64) *Spool {
	t.Helper()
	s, err := Open(Config{Dir: dir, MaxBytes: maxBytes, SegmentBytes: segBytes,
		Log: logtest.New(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t *testing.T, s *Spool, k Kind, payload string) uint64 {
	t.Helper()
	seq, err := s.Append(k, []byte(payload))
	if err != nil {
		t.Fatalf("Append(%v, %q): %v", k, payload, err)
	}
	return seq
}

func pendingSeqs(t *testing.T, s *Spool, after uint64) []uint64 {
	t.Helper()
	msgs, err := s.Pending(after, 1<<30)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	seqs := []uint64{}
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func equalSeqs(a, b []uint64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestAppendAssignsIncreasingSeqsAndPendingKeepsOrder(t *testing.T) {
	s := open(t, t.TempDir(), 0, minSegmentBytes)

	kinds := []Kind{KindHeartbeat, KindDriftReport, KindCommandResult, KindDiscoveryReport}
	for i := range 200 {
		k := kinds[i%len(kinds)]
		if seq := mustAppend(t, s, k, fmt.Sprintf("message %d", i)); seq != uint64(i+1) {
			t.Fatalf("Append #%d got seq %d, want %d", i, seq, i+1)
		}
	}

	msgs, err := s.Pending(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 200 {
		t.Fatalf("Pending returned %d messages, want 200", len(msgs))
	}
	for i, m := range msgs {
		want := fmt.Sprintf("message %d", i)
		if m.Seq != uint64(i+1) || m.Kind != kinds[i%len(kinds)] || string(m.Payload) != want {
			t.Fatalf("message %d = {%d %v %q}", i, m.Seq, m.Kind, m.Payload)
		}
	}

	page, err := s.Pending(150, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 10 || page[0].Seq != 151 || page[9].Seq != 160 {
		t.Fatalf("Pending(150, 10) = %d messages starting at %d", len(page), page[0].Seq)
	}

	segs, _ := filepath.Glob(filepath.Join(s.dir, "*.seg"))
	if len(segs) < 2 {
		t.Errorf("expected several segments with 4 KiB segments, got %d", len(segs))
	}
}

func TestAckPrunesAndDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, minSegmentBytes)
	payload := string(bytes.Repeat([]byte("x"), 500))
	for range 40 {
		mustAppend(t, s, KindDriftReport, payload)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "*.seg"))

	if err := s.Ack(30); err != nil {
		t.Fatal(err)
	}
	if got := pendingSeqs(t, s, 0); len(got) != 10 || got[0] != 31 {
		t.Fatalf("after Ack(30) pending = %v", got)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) >= len(before) {
		t.Errorf("Ack(30) left %d of %d segments", len(after), len(before))
	}
	st := s.State()
	if st.Messages != 10 || st.OldestSeq != 31 || st.NextSeq != 41 {
		t.Errorf("State = %+v", st)
	}

	if err := s.Ack(20); err != nil { // stale ack: ignored
		t.Fatal(err)
	}
	if err := s.Ack(40); err != nil {
		t.Fatal(err)
	}
	if got := pendingSeqs(t, s, 0); len(got) != 0 {
		t.Fatalf("after Ack(40) pending = %v", got)
	}
	if st := s.State(); st.Messages != 0 || st.OldestSeq != 0 || st.Bytes != 0 {
		t.Errorf("State after full ack = %+v", st)
	}
}

func TestReopenKeepsUnackedAndNeverReusesSeqs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, 0)
	for i := range 5 {
		mustAppend(t, s, KindCommandResult, fmt.Sprint(i))
	}
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir, 0, 0)
	if got := pendingSeqs(t, s, 0); !equalSeqs(got, []uint64{3, 4, 5}) {
		t.Fatalf("after reopen pending = %v, want [3 4 5]", got)
	}
	if err := s.Ack(5); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Empty now: the next seq must still continue from 6.
	s = open(t, dir, 0, 0)
	if seq := mustAppend(t, s, KindHeartbeat, "hb"); seq != 6 {
		t.Fatalf("first seq after an emptied spool = %d, want 6", seq)
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, 0)
	for i := range 3 {
		mustAppend(t, s, KindDriftReport, fmt.Sprintf("report %d", i))
	}
	s.Close()

	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments = %v", segs)
	}
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[0], fi.Size()-3); err != nil { // tear the last record
		t.Fatal(err)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 40)) // and follow it with zeros, as after a crash
	f.Close()

	s = open(t, dir, 0, 0)
	if got := pendingSeqs(t, s, 0); !equalSeqs(got, []uint64{1, 2}) {
		t.Fatalf("pending after torn tail = %v, want [1 2]", got)
	}
	seq := mustAppend(t, s, KindDriftReport, "after")
	s.Close()

	s = open(t, dir, 0, 0)
	if got := pendingSeqs(t, s, 0); !equalSeqs(got, []uint64{1, 2, seq}) {
		t.Fatalf("pending after append past a torn tail = %v", got)
	}
}

func TestFullSpoolDropsOldestHeartbeatsOnly(t *testing.T) {
	dir := t.TempDir()
	const max = 8 << 10
	s := open(t, dir, max, minSegmentBytes)
	payload := string(bytes.Repeat([]byte("p"), 200)) // 217 bytes a record

	var important []uint64
	for i := range 200 { // far more than fits
		k := KindHeartbeat
		if i%10 == 0 {
			k = KindDriftReport
		}
		seq := mustAppend(t, s, k, payload)
		if k != KindHeartbeat {
			important = append(important, seq)
		}
		if st := s.State(); st.Bytes > max {
			t.Fatalf("spool uses %d bytes, over its %d limit", st.Bytes, max)
		}
	}

	msgs, err := s.Pending(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var kept []uint64
	var lastHB uint64
	for _, m := range msgs {
		if m.Kind == KindHeartbeat {
			lastHB = m.Seq
			continue
		}
		kept = append(kept, m.Seq)
	}
	if !equalSeqs(kept, important) {
		t.Fatalf("non-heartbeats kept %v, want all of %v", kept, important)
	}
	if lastHB != 200 && lastHB != 199 {
		t.Errorf("newest heartbeat kept is %d; the oldest ones should go first", lastHB)
	}
	st := s.State()
	if st.DroppedHeartbeats == 0 || st.DroppedHeartbeats+st.Messages != 200 {
		t.Errorf("State = %+v, want dropped + held = 200", st)
	}

	s.Close()
	s = open(t, dir, max, minSegmentBytes)
	if got := s.State(); got.Messages != st.Messages {
		t.Errorf("after reopen %d messages, want %d", got.Messages, st.Messages)
	}
}

func TestFullOfNonHeartbeatsRefusesAppend(t *testing.T) {
	s := open(t, t.TempDir(), 8<<10, minSegmentBytes)
	payload := bytes.Repeat([]byte("d"), 1000)

	var err error
	var n int
	for n = 0; n < 100; n++ {
		if _, err = s.Append(KindDriftReport, payload); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append on a full spool = %v, want ErrFull", err)
	}
	if got := len(pendingSeqs(t, s, 0)); got != n {
		t.Fatalf("pending %d, want the %d appended", got, n)
	}

	if err := s.Ack(3); err != nil { // acknowledged records make room again
		t.Fatal(err)
	}
	if _, err := s.Append(KindDriftReport, payload); err != nil {
		t.Fatalf("Append after Ack: %v", err)
	}
	if _, err := s.Append(KindDriftReport, make([]byte, 9<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of a message larger than the spool = %v, want ErrTooLarge", err)
	}
}

func TestAckBeyondLastSeqSkipsAhead(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, 0)
	mustAppend(t, s, KindHeartbeat, "a")
	mustAppend(t, s, KindHeartbeat, "b")

	if err := s.Ack(100); err != nil { // the controller has seen seqs we no longer have
		t.Fatal(err)
	}
	if seq := mustAppend(t, s, KindDriftReport, "c"); seq != 101 {
		t.Fatalf("seq after Ack(100) = %d, want 101", seq)
	}
	s.Close()
	s = open(t, dir, 0, 0)
	if got := pendingSeqs(t, s, 0); !equalSeqs(got, []uint64{101}) {
		t.Fatalf("pending after reopen = %v", got)
	}
}

func TestConcurrentAppendsAreAllKeptOnce(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, minSegmentBytes)

	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				seq, err := s.Append(KindDriftReport, fmt.Appendf(nil, "w%d-%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()

	s = open(t, dir, 0, minSegmentBytes)
	got := pendingSeqs(t, s, 0)
	if len(got) != 400 || len(seen) != 400 {
		t.Fatalf("got %d pending and %d distinct seqs, want 400", len(got), len(seen))
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("pending[%d] = %d", i, seq)
		}
	}
}

func TestAppendedSignalsNewMessages(t *testing.T) {
	s := open(t, t.TempDir(), 0, 0)
	select {
	case <-s.Appended():
		t.Fatal("signal before any append")
	default:
	}
	mustAppend(t, s, KindHeartbeat, "x")
	select {
	case <-s.Appended():
	default:
		t.Fatal("no signal after Append")
	}
}

func TestClosedSpoolRefusesCalls(t *testing.T) {
	s := open(t, t.TempDir(), 0, 0)
	s.Close()
	if _, err := s.Append(KindHeartbeat, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if err := s.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
