package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// pumpResult is what one session's pumpHeartbeats saw before its deadline.
type pumpResult struct {
	acked     int             // messages acknowledged before the deadline
	latencies []time.Duration // send-to-ack time of each of them
}

// pumpHeartbeats sends heartbeats as fast as acknowledgements allow, with at most window unacknowledged
// at any time, until ctx ends; then it closes the session. It reports the messages acked
// before ctx ended and their latencies, and an error when the stream failed earlier.
func (s *Session) pumpHeartbeats(ctx context.Context, window int) (pumpResult, error) {
	p := &pump{
		s:     s,
		sent:  make([]time.Time, window),
		slots: make(chan struct{}, window),
		first: s.nextSeq,
	}
	p.acked = p.first - 1

	recvDone := make(chan error, 1)
	go func() { recvDone <- p.receive() }()

	sendErr := p.send(ctx)

	p.mu.Lock()
	res := pumpResult{acked: p.count, latencies: p.latencies}
	p.latencies = nil
	p.mu.Unlock()

	s.Close()
	recvErr := <-recvDone
	if sendErr != nil {
		return res, sendErr
	}
	if ctx.Err() == nil {
		return res, recvErr
	}
	return res, nil
}

// pump is the shared state of one pumpHeartbeats call.
type pump struct {
	s     *Session
	slots chan struct{} // one token per unacknowledged message
	first uint64        // first sequence number pumpHeartbeats sends

	mu        sync.Mutex // guards the fields below
	sent      []time.Time
	lastSent  uint64
	acked     uint64 // highest sequence number acknowledged
	count     int
	latencies []time.Duration
}

// send sends heartbeats while a window slot is free, until ctx ends or a send fails.
func (p *pump) send(ctx context.Context) error {
	w := uint64(len(p.sent))
	for {
		select {
		case <-ctx.Done():
			return nil
		case p.slots <- struct{}{}:
		}

		seq := p.s.nextSeq
		p.mu.Lock()
		p.sent[seq%w] = time.Now()
		p.lastSent = seq
		p.mu.Unlock()

		if err := p.s.Heartbeat(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// receive records acks until the stream ends, freeing one window slot per message acked.
func (p *pump) receive() error {
	w := uint64(len(p.sent))
	for {
		resp, err := p.s.stream.Recv()
		if err != nil {
			return fmt.Errorf("receive ack: %w", err)
		}
		a := resp.GetAck()
		if a == nil {
			continue
		}

		now := time.Now()
		p.mu.Lock()
		up := min(a.GetUpToSeq(), p.lastSent)
		n := 0
		for q := p.acked + 1; q <= up; q++ {
			p.latencies = append(p.latencies, now.Sub(p.sent[q%w]))
			n++
		}
		if up > p.acked {
			p.acked = up
		}
		p.count += n
		p.mu.Unlock()

		for range n {
			<-p.slots
		}
	}
}
