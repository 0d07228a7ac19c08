"""The simulated wire: a discrete-event scheduler on a virtual clock, NICs, media (link, hub,
switch), impairment models, scripted faults and the decision log."""

from .decisions import DecisionLog, fmt_time
from .impair import Fault, LinkParams
from .hub import Hub
from .link import Link, LinkDirection
from .switch import Switch
from ..wire.checksum import check_fcs as fcs_ok
from ..wire.checksum import fcs
from .nic import Nic
from .scheduler import Handle, Scheduler

__all__ = ["DecisionLog", "Fault", "Handle", "Hub", "Link", "LinkDirection", "LinkParams", "Nic",
           "Scheduler", "Switch", "fcs", "fcs_ok", "fmt_time"]
