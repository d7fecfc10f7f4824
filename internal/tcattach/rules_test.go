package tcattach

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetlinkPlan(t *testing.T) {
	aliveOnly := func(pids ...int) func(int) bool {
		return func(pid int) bool {
			for _, p := range pids {
				if p == pid {
					return true
				}
			}
			return false
		}
	}
	cil := func(prio uint16) filter {
		return filter{Priority: prio, Handle: 1, Kind: "bpf", Name: "cil_from_netdev-eth0", ProgName: "cil_from_netdev"}
	}
	tests := []struct {
		name      string
		st        hookState
		wantErr   []string
		wantStale int
	}{
		{name: "nothing there"},
		{name: "Cilium at priority 2", st: hookState{Filters: []filter{cil(2)}}},
		{name: "Cilium at priority 1", st: hookState{Filters: []filter{cil(1)}},
			wantErr: []string{"cilium config set bpf-filter-priority 2", `"cil_from_netdev-eth0 (program cil_from_netdev)" at priority 1`}},
		{name: "Cilium known by its program only", st: hookState{Filters: []filter{{Priority: 1, Kind: "bpf", Name: "bpf_netdev.o:[from-netdev]", ProgName: "cil_from_netdev"}}},
			wantErr: []string{"bpf-filter-priority"}},
		{name: "Cilium on TCX", st: hookState{TCX: []program{{ID: 7, Name: "cil_from_netdev"}}},
			wantErr: []string{"Cilium's cil_from_netdev is attached with TCX", "network.tc_backend: tcx"}},
		{name: "another program on TCX", st: hookState{TCX: []program{{ID: 7, Name: "xdp_thing"}}},
			wantErr: []string{"(xdp_thing) run before every netlink filter"}},
		{name: "another filter at priority 1", st: hookState{Filters: []filter{{Priority: 1, Kind: "u32"}}},
			wantErr: []string{"u32 filter", "move it to a priority above 1"}},
		{name: "a running collector's", st: hookState{Filters: []filter{{Priority: 1, Kind: "bpf", Name: "otelcol-ebpf-flows-42"}}},
			wantErr: []string{"the collector with pid 42 already counts flows here"}},
		{name: "a killed collector's", st: hookState{Filters: []filter{{Priority: 1, Kind: "bpf", Name: "otelcol-ebpf-flows-43"}, cil(2)}},
			wantStale: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stale, err := netlinkPlan(tt.st, aliveOnly(42))
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				assert.Len(t, stale, tt.wantStale)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestTCXNotes(t *testing.T) {
	notes := tcxNotes(hookState{TCX: []program{{Name: "cil_to_container"}, {Name: "other"}},
		Filters: []filter{{Priority: 1, Kind: "bpf", Name: "cil_from_netdev-eth0"}}})
	assert.Equal(t, []string{
		"Cilium's cil_to_container is attached with TCX: ours runs before it, at the head of the chain",
		"Cilium's netlink filters run after every TCX program: ours runs before them",
	}, notes)
	assert.Empty(t, tcxNotes(hookState{}))
}

func TestRefusedError(t *testing.T) {
	var err error = &RefusedError{Interface: "eth0", Direction: Egress, Reason: "because"}
	assert.Equal(t, "not attached to eth0 egress: because", err.Error())
	var r *RefusedError
	assert.True(t, errors.As(err, &r))
}

func TestAttachRejectsUnknownBackend(t *testing.T) {
	_, err := Attach(Interface{Name: "eth0"}, Programs{}, "ebpf")
	assert.ErrorContains(t, err, `tc backend "ebpf": must be auto, tcx or netlink`)
}
