package server

import (
	"errors"
	"testing"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/remediation"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestStreamSenderNotConnected(t *testing.T) {
	e := newEnv(t, nil)
	err := streamSender{streams: e.srv.agents}.Send("nobody", &wardv1.ConnectResponse{})
	if !errors.Is(err, remediation.ErrNotConnected) || !errors.Is(err, agentapi.ErrNotConnected) {
		t.Fatalf("Send = %v, want remediation.ErrNotConnected", err)
	}
}
