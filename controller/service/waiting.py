"""The packages waiting at the station (state `received`), kept in memory beside the store.

Every planning pass plans every waiting package. Reading them back from the store costs about 25 µs a
package (row decoding and validation) on every pass: under a few hundred submissions a second that made the
store the bottleneck of intake, and it grows with the queue. So every package write of the controller goes
through `WaitingPackages`, which updates its set from what the write returned. It runs on the store's own
thread (`StationService.io`), so its updates happen in commit order and a snapshot is always what the store
held after the last write. `forget()` makes the next snapshot read the store again: the service does that
every minute (which also picks up packages another process wrote to a shared database) and when a pass
finds the set out of step with the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from controller.packages import Package, PackageState
from controller.store import Move, Store, Submission

__all__ = ["WaitingPackages", "all_in_state"]

_PAGE = 1000


class WaitingPackages:
    """The store's package writes, with the set of waiting packages kept in step. Store thread only."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_id: dict[str, Package] | None = None  # None: not known, read the store on next snapshot

    def record(
        self, submission: Submission, moves: Sequence[Move], missions: Sequence[Mapping[str, Any]]
    ) -> list[Package]:
        """`Store.record`, noting the new packages and where the moved ones went."""
        moved = self.store.record(submission, moves, missions)
        self._note(submission.new)
        self._note(moved)
        return moved

    def transition_many(self, moves: Sequence[Move]) -> list[Package]:
        """`Store.transition_many`, noting where the packages went."""
        moved = self.store.transition_many(moves)
        self._note(moved)
        return moved

    def transition(self, package_id: str, to_state: PackageState, **kwargs: Any) -> Package:
        """`Store.transition`, noting where the package went."""
        moved = self.store.transition(package_id, to_state, **kwargs)
        self._note([moved])
        return moved

    def snapshot(self) -> list[Package]:
        """Every waiting package, oldest first (the store's order)."""
        if self._by_id is None:
            self._by_id = {p.id: p for p in self._read()}
        return sorted(self._by_id.values(), key=lambda p: (p.created_at, p.id))

    def forget(self) -> None:
        """Read the store again on the next snapshot."""
        self._by_id = None

    def _note(self, packages: Iterable[Package]) -> None:
        if self._by_id is None:
            return
        waiting = PackageState.RECEIVED
        for package in packages:
            if package.state is waiting:
                self._by_id[package.id] = package
            else:
                self._by_id.pop(package.id, None)

    def _read(self) -> list[Package]:
        return all_in_state(self.store, PackageState.RECEIVED)


def all_in_state(store: Store, state: PackageState) -> list[Package]:
    """Every package in `state`, oldest first, read a page at a time."""
    out: list[Package] = []
    after: str | None = None
    while True:
        page = store.list(state=state, limit=_PAGE, after=after)
        out.extend(page)
        if len(page) < _PAGE:
            return out
        after = page[-1].id
