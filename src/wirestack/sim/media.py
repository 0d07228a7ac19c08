"""Simulated media: a full-duplex point-to-point :class:`Link`, a shared :class:`Hub` (with
or without CSMA/CD) and a learning store-and-forward :class:`Switch`.

Media carry frames *with* their FCS (the NIC appends and checks it). Every frame put on a
medium gets an id from the :class:`~wirestack.sim.decisions.DecisionLog`, and every decision
about it is recorded there (at the log's level).

A medium talks to its endpoints through two methods, the contract
:class:`wirestack.contracts.MediumEndpoint` that :class:`~wirestack.sim.nic.Nic` (and a
switch's port) implements: ``endpoint.attach(medium, tx)`` (tx = the callable the endpoint
sends frames with) and ``endpoint.deliver(data, frame_id, medium)`` (a frame has fully
arrived). The medium exposes ``.name`` and ``.log`` to its endpoints; observers register
with ``medium.add_tap(fn)`` / ``add_frame_tap(fn)``.

The media live one per module: :mod:`wirestack.sim.link`, :mod:`wirestack.sim.hub`,
:mod:`wirestack.sim.switch` (what they share: :mod:`wirestack.sim.medium`); this module
names them together, as existing code imports them.
"""

from __future__ import annotations

from .hub import Hub
from .link import Link, LinkDirection
from .switch import Switch

__all__ = ["Hub", "Link", "LinkDirection", "Switch"]
