"""The view's per-agent index against a plain model: the divergence rule, prune's key list
and forgetting partitions give what a scan of every state would (pure logic, no broker)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actionstate.client._view import Entry, StateView

AGENTS = ["a", "b"]
SKEYS = [f"{agent}_{seq}_{n}" for agent in AGENTS for seq in range(5) for n in range(2)]


def _entry(skey: str) -> Entry:
    return Entry(skey.encode(), None, partition=ord(skey[-1]) % 2, offset=0)


def _agent_seq(skey: str) -> tuple[str, int]:
    agent, seq, _ = skey.split("_")
    return agent, int(seq)


class Model:
    """What the view must do, by scanning everything."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, int, int]] = {}  # skey -> (agent, seq, partition)

    def put(self, skey: str) -> None:
        agent, seq = _agent_seq(skey)
        self.states[skey] = (agent, seq, _entry(skey).partition)

    def lookup(self, agent: str, seq: int, skey: str) -> bool:
        mine = {k: s for k, (a, s, _) in self.states.items() if a == agent}
        if not mine:
            return False
        same = sum(1 for s in mine.values() if s == seq)
        if skey not in self.states or same > 1:
            for k, s in mine.items():
                if s > seq:
                    del self.states[k]
        return skey in self.states

    def up_to(self, agent: str, limit: int) -> set[str]:
        return {k for k, (a, s, _) in self.states.items() if a == agent and s <= limit}

    def forget(self, partition: int) -> int:
        gone = [k for k, (_, _, p) in self.states.items() if p == partition]
        for k in gone:
            del self.states[k]
        return len(gone)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(SKEYS)),
        st.tuples(st.just("lookup"), st.sampled_from(SKEYS)),
        st.tuples(st.just("discard"), st.sampled_from(SKEYS)),
        st.tuples(st.just("up_to"), st.sampled_from(SKEYS)),
        st.tuples(st.just("forget"), st.sampled_from(["0", "1"])),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_the_index_agrees_with_a_scan_of_every_state(steps: list[tuple[str, str]]) -> None:
    view, model = StateView(), Model()
    for op, arg in steps:
        if op == "forget":
            assert view.forget_partitions([int(arg)]) == model.forget(int(arg))
            continue
        agent, seq = _agent_seq(arg)
        if op == "put":
            view.put(agent, seq, arg, _entry(arg))
            model.put(arg)
        elif op == "lookup":
            assert (view.lookup(agent, seq, arg) is not None) == model.lookup(agent, seq, arg)
        elif op == "discard":
            view.discard(agent, [arg])
            model.states.pop(arg, None)
        else:
            assert set(view.keys_up_to(agent, seq)) == model.up_to(agent, seq)
        assert {k for k, _ in view.snapshot()} == set(model.states)
        assert len(view) == len(model.states)
