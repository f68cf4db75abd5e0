package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/store"
)

// commandOwners answers agentapi's question "whose command is this?" from the command
// store, so an agent cannot report on another agent's command.
type commandOwners struct{ st store.Commands }

var _ agentapi.CommandOwners = commandOwners{}

func (c commandOwners) CommandAgent(ctx context.Context, id string) (string, error) {
	cmd, err := c.st.GetCommand(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("command %s: %w", id, agentapi.ErrUnknownCommand)
	}
	if err != nil {
		return "", err
	}
	return cmd.Agent, nil
}
