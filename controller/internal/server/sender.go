package server

import (
	"errors"
	"fmt"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/remediation"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// streamSender adapts the agent streams to remediation.Sender (and the baseline
// publisher): an agent without a stream here is remediation.ErrNotConnected.
type streamSender struct{ streams *agentapi.Server }

var _ remediation.Sender = streamSender{}

func (s streamSender) Send(agentID string, m *wardv1.ConnectResponse) error {
	err := s.streams.Send(agentID, m)
	if errors.Is(err, agentapi.ErrNotConnected) {
		return fmt.Errorf("%w: %w", remediation.ErrNotConnected, err)
	}
	return err
}
