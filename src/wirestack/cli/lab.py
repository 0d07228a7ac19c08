"""`wirestack lab`: experiments that switch one mechanism off."""

from __future__ import annotations

from .view import add_view_options


def register(sub) -> None:
    lab = sub.add_parser("lab", help="switch one mechanism off and watch the failure it prevents")
    lab.add_argument("name", nargs="?", help="the lab to run (none: list them)")
    lab.add_argument("--seed", type=int, default=1)
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
        parser.error(f"lab: unknown lab {args.name!r} (choose from {', '.join(LABS)})")
    print(run_lab(args.name, seed=args.seed))
    return 0
