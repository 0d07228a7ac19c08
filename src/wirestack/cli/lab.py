"""`wirestack lab`: experiments that switch one mechanism off."""

from __future__ import annotations

from .common import RawEpilogFormatter, usage_error
from .view import add_view_options


def register(sub) -> None:
    from ..labs.experiments import LABS
    listing = "\n".join(f"  {lab.name:<16} {lab.title}" for lab in LABS.values())
    lab = sub.add_parser("lab", help="switch one mechanism off and watch the failure it prevents",
                         description="Each lab runs the same transfer on the same seeded wire twice "
                                     "(or three times), with one TCP/IP mechanism switched off, and "
                                     "prints the figures to compare.",
                         epilog=f"labs:\n{listing}", formatter_class=RawEpilogFormatter)
    lab.add_argument("name", nargs="?", metavar="NAME", help="the lab to run (none: list them)")
    lab.add_argument("--seed", type=int, default=1,
                     help="random seed of the wire: same seed, same run; another seed, another run")
    lab.add_argument("-q", "--quiet", action="store_true",
                     help="no running-time line on the terminal while the lab runs")
    lab.set_defaults(run=cmd_lab)
    add_view_options(lab)


def cmd_lab(args, parser) -> int:
    from ..labs.experiments import LABS, run_lab
    if args.name is None:
        print("labs (run one with: wirestack lab NAME [--seed S]):")
        for lab in LABS.values():
            print(f"  {lab.name:<16} {lab.title}")
        return 0
    if args.name not in LABS:
        raise usage_error(f"unknown lab {args.name!r} (choose from {', '.join(LABS)})")
    from .progress import Ticker
    with Ticker(f"lab {args.name}", enabled=not args.quiet):
        text = run_lab(args.name, seed=args.seed)
    print(text, flush=True)
    return 0
