package spool

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const killChildEnv = "WARD_SPOOL_KILL_CHILD"

// runKillChild is the child process of TestKill9LosesNothing: it appends from two
// goroutines, and acknowledges now and then, printing "seq N" after each Append returns,
// "acking N" before each Ack and "ack N" after it returns, until it is killed.
func runKillChild(dir string) {
	s, err := Open(Config{Dir: dir, SegmentBytes: minSegmentBytes,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	var mu sync.Mutex
	var printed []uint64
	emit := func(format string, v uint64) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", v)
		if format == "seq %d" {
			printed = append(printed, v)
		}
	}

	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				payload := make([]byte, rand.IntN(300))
				kind := KindDriftReport
				if (i+w)%3 == 0 {
					kind = KindCommandResult
				}
				seq, err := s.Append(kind, payload)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				emit("seq %d", seq)
			}
		})
	}
	wg.Go(func() {
		for {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			mu.Lock()
			var upTo uint64
			if n := len(printed); n > 50 {
				upTo = printed[n-50]
			}
			mu.Unlock()
			if upTo == 0 {
				continue
			}
			emit("acking %d", upTo)
			if err := s.Ack(upTo); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			emit("ack %d", upTo)
		}
	})
	wg.Wait()
}

func TestKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	var acked, acking uint64 // acknowledged for sure; perhaps (an Ack cut short by the kill)
	appended := map[uint64]bool{}

	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}

		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()

		time.AfterFunc(time.Duration(100+rand.IntN(400))*time.Millisecond, func() {
			cmd.Process.Signal(syscall.SIGKILL)
		})
		n := 0
		for line := range lines {
			verb, num, _ := strings.Cut(line, " ")
			v, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				continue // a line cut short by the kill
			}
			switch verb {
			case "seq":
				if appended[v] {
					t.Fatalf("round %d: seq %d assigned twice", round, v)
				}
				appended[v] = true
				n++
			case "ack":
				acked = max(acked, v)
			case "acking":
				acking = max(acking, v)
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL", round, err)
		}
		t.Logf("round %d: %d appends, acked up to %d", round, n, acked)

		checkAfterKill(t, dir, appended, acked, acking)
	}
}

// checkAfterKill reopens the spool and checks that every appended, unacknowledged seq is
// pending exactly once and that no acknowledged seq is. Seqs up to acking may have been
// acknowledged by an Ack the kill interrupted: they may be pending or not, but not twice.
func checkAfterKill(t *testing.T, dir string, appended map[uint64]bool, acked, acking uint64) {
	t.Helper()
	s := open(t, dir, 0, minSegmentBytes)
	defer s.Close()

	msgs, err := s.Pending(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	present := map[uint64]int{}
	for _, m := range msgs {
		present[m.Seq]++
		if m.Seq <= acked {
			t.Errorf("seq %d pending although acknowledged up to %d", m.Seq, acked)
		}
	}
	var highest uint64
	for seq := range appended {
		highest = max(highest, seq)
		if present[seq] > 1 || seq > acking && present[seq] != 1 {
			t.Errorf("seq %d appended and unacknowledged, present %d times", seq, present[seq])
		}
	}
	if next := s.State().NextSeq; next <= highest {
		t.Errorf("next seq %d would reuse appended seq %d", next, highest)
	}
}
