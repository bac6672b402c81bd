"""``balance roundrobin``: HAProxy's fast weighted round-robin (FWRR), dynamic weights.

Why three trees. A server with effective weight ``e`` (16 x user weight) must be
picked ``e`` times per "window" of ``W = sum(e)`` picks, spread evenly. FWRR gives
each server a next position ``npos`` on the pick counter ``curr_pos``: after a
pick it advances by ``W / e`` (the remainder ``W mod e`` is carried in ``rweight``
so that the long run is exact). Servers wait in:

- ``curr``: ordered by ``npos`` (key ``256*npos + (4096 + rweight - e)/16``, so at
  equal position the heavier server goes first), the schedule of this window;
- ``init``: servers not yet placed in this window, ordered by weight (key
  ``4096 - e``, heaviest first); they enter ``curr`` when the head of ``curr`` is
  not due yet (a "hole");
- ``next``: servers whose next position falls beyond the window; when ``curr``
  and ``init`` are exhausted, ``next`` becomes ``init`` and a new window begins.

Every pick is O(log n) and needs no per-window table, so weights can change at
any time: a changed server is moved in place (``weight_changed``), a returning
one is re-inserted at the current position with a delay proportional to its
weight (``server_up``), exactly as HAProxy 2.6 does. Equal keys are FIFO, which
makes the start order follow the configuration. This reproduces HAProxy's
measured sequences (spec 1.6): 3:1 -> ``a a a b``, 3:2:1 -> ``a b a c a b``, ...

Saturated servers (``maxconn`` reached, or a queue already there) are taken out
and put back as if they had been picked, so they keep their place; if the whole
group is saturated the result is ``None`` and the connection waits in the
backend queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.balance._base import Algorithm
from proxy.balance._tree import Tree
from proxy.server import MAX_WEIGHT, WEIGHT_SCALE, Server

#: HAProxy's SRV_EWGHT_MAX: the highest effective weight.
EWEIGHT_MAX = MAX_WEIGHT * WEIGHT_SCALE
#: HAProxy's SRV_UWGHT_RANGE: position multiplier of the ``curr`` key.
UWEIGHT_RANGE = 256


class _Place:
    """Where FWRR keeps one server (its own copy of the weight it was told)."""

    __slots__ = ("e", "lpos", "npos", "rweight", "tree")

    def __init__(self, e: int) -> None:
        self.e = e
        self.npos = 0
        self.lpos = 0
        self.rweight = 0
        self.tree: Tree[Server] | None = None


class _Group:
    """One FWRR group (actives or backups): the three trees and the window."""

    def __init__(self) -> None:
        self.curr: Tree[Server] = Tree()
        self.init: Tree[Server] = Tree()
        self.next: Tree[Server] = Tree()
        self.curr_weight = 0
        self.next_weight = 0
        self.curr_pos = 0

    def switch_trees(self) -> None:
        self.init, self.next = self.next, self.init
        self.curr_weight = self.next_weight
        self.curr_pos = self.curr_weight


class RoundRobin(Algorithm):
    """Weighted round-robin with weights that apply immediately."""

    name = "roundrobin"
    dynamic = True
    fair_backend_queue = True

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, hash_type: str = ""
    ) -> None:
        super().__init__(servers, allbackups=allbackups)
        self._groups = {False: _Group(), True: _Group()}
        self._places: dict[Server, _Place] = {}
        for s in self.servers:
            self._places[s] = _Place(s.eweight)
        for backup, grp in self._groups.items():
            members = self.group(backup)
            grp.curr_pos = grp.curr_weight = grp.next_weight = sum(s.eweight for s in members)
            for s in members:
                self._queue_by_weight(grp.init, s)

    # -- tree primitives ------------------------------------------------------

    def _place(self, s: Server) -> _Place:
        place = self._places.get(s)
        if place is None:
            place = self._places[s] = _Place(s.eweight)
        return place

    def _queue_by_weight(self, tree: Tree[Server], s: Server) -> None:
        place = self._place(s)
        tree.insert(EWEIGHT_MAX - place.e, s)
        place.tree = tree

    def _dequeue(self, s: Server) -> None:
        place = self._place(s)
        if place.tree is not None:
            place.tree.remove(s)

    def _queue(self, grp: _Group, s: Server) -> None:
        """Put ``s`` back according to its next position: ``curr`` or ``next``."""
        place = self._place(s)
        if not self.is_usable(s):
            place.tree = None
        elif (
            place.e <= 0
            or place.npos >= 2 * grp.curr_weight
            or place.npos >= grp.curr_weight + grp.next_weight
        ):
            place.npos -= grp.curr_weight
            self._queue_by_weight(grp.next, s)
        else:
            key = UWEIGHT_RANGE * place.npos + (EWEIGHT_MAX + place.rweight - place.e) // (
                WEIGHT_SCALE
            )
            grp.curr.insert(key, s)
            place.tree = grp.curr

    def _get(self, grp: _Group, s: Server) -> None:
        """Prepare ``s``'s position for leaving the tree it is in."""
        place = self._place(s)
        if place.tree is grp.init:
            place.npos = place.rweight = 0
        elif place.tree is grp.next:
            place.npos += grp.curr_weight
        elif place.tree is None:
            place.npos = grp.curr_pos

    def _from_group(self, grp: _Group) -> Server | None:
        s1 = grp.curr.first()
        if s1 is not None:
            p1 = self._places[s1]
            if p1.e and p1.npos <= grp.curr_pos:
                return s1
        s2 = grp.init.first()
        if s2 is not None:
            p2 = self._places[s2]
            if p2.e:
                p2.npos = p2.rweight = 0
                return s2
        return s1

    def _advance(self, grp: _Group, s: Server) -> None:
        place = self._places[s]
        e = place.e
        if not e:
            return
        if not place.npos:
            place.npos = grp.curr_pos
        place.lpos = place.npos
        place.npos += grp.next_weight // e
        place.rweight += grp.next_weight % e
        if place.rweight >= e:
            place.rweight -= e
            place.npos += 1

    # -- pick ----------------------------------------------------------------

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        grp = self._groups[backup]
        switched = False
        avoided: Server | None = None
        full: list[Server] = []
        srv: Server | None = None
        while True:
            if not grp.curr_weight:
                grp.curr_pos = grp.curr_weight = grp.next_weight
            while True:
                srv = self._from_group(grp)
                if srv is not None:
                    break
                if switched:
                    break
                switched = True
                grp.switch_trees()
            if srv is None:
                srv = avoided
                break
            self._advance(grp, srv)
            self._dequeue(srv)
            grp.curr_pos += 1
            if srv.has_free_slot:
                if srv is not avoid or avoided is not None:
                    break
                avoided = srv
            full.append(srv)
        if srv is not None:
            self._queue(grp, srv)
        for s in full:
            if s is srv:
                continue
            if switched:
                self._queue_by_weight(grp.init, s)
            else:
                self._queue(grp, s)
        return srv

    # -- hooks ---------------------------------------------------------------

    def _up(self, s: Server) -> None:
        grp = self._groups[s.backup]
        place = self._place(s)
        place.e = s.eweight
        grp.next_weight += place.e
        self._get(grp, s)
        place.npos = grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) // place.e
        self._queue(grp, s)

    def _down(self, s: Server) -> None:
        grp = self._groups[s.backup]
        place = self._place(s)
        grp.next_weight -= place.e
        self._dequeue(s)
        place.tree = None

    def _reweight(self, s: Server, old_eweight: int) -> None:
        grp = self._groups[s.backup]
        place = self._place(s)
        grp.next_weight += s.eweight - place.e
        place.e = s.eweight
        if place.tree is grp.init:
            self._dequeue(s)
            self._queue_by_weight(grp.init, s)
            return
        if place.tree is None:
            self._get(grp, s)
            place.npos = grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) // (
                place.e
            )
            self._queue(grp, s)
            return
        self._get(grp, s)
        if place.e > 0:
            prev_next = place.npos
            step = grp.next_weight // place.e
            place.npos = place.lpos + step
            place.rweight = 0
            place.npos = min(place.npos, prev_next)
            if place.npos < grp.curr_pos + 2:
                place.npos = grp.curr_pos + step
        else:
            place.npos = grp.curr_pos + grp.curr_weight
        self._dequeue(s)
        self._queue(grp, s)
