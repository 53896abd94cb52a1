"""IR-Net ablation on Fashion-MNIST: with and without Libra-PB, with and without EDE.

Trains IRNetResNet20 four times with the `zoo` command under one budget (same epochs,
batch, optimizer and seed), then prints one table from the runs' metrics.json and
writes it to benchmarks/results/irnet_ablation.json. Runs resume where they stopped,
and a finished run is not trained again.

    .venv/bin/python benchmarks/irnet_ablation.py --epochs 5
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS = [  # (name, Libra-PB, EDE)
    ("IR-Net (Libra-PB + EDE)", True, True),
    ("Libra-PB, STE", True, False),
    ("sign weights, EDE", False, True),
    ("sign weights, STE (baseline)", False, False),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--runs", default="runs/irnet_ablation")
    parser.add_argument("--out", default="benchmarks/results/irnet_ablation.json")
    args = parser.parse_args()
    zoo = str(Path(sys.executable).with_name("zoo"))
    rows = []
    for name, libra_pb, ede in VARIANTS:
        out = Path(args.runs) / f"{'libra_pb' if libra_pb else 'sign'}-{'ede' if ede else 'ste'}"
        command = [zoo, "TrainIRNetResNet20", "dataset=FashionMNIST", f"epochs={args.epochs}",
                   f"batch_size={args.batch_size}", f"model.libra_pb={libra_pb}",
                   f"model.ede={ede}", "progress_bar=False", f"output_dir={out}"]
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
        metrics = json.loads((out / "metrics.json").read_text())
        rows.append({"variant": name, "libra_pb": libra_pb, "ede": ede, "top1": metrics["top1"],
                     "top5": metrics["top5"], "wall_time_seconds": metrics["wall_time_seconds"],
                     "command": metrics["command"], "git_commit": metrics["git_commit"]})
    result = {"model": "IRNetResNet20", "dataset": "FashionMNIST", "epochs": args.epochs,
              "batch_size": args.batch_size, "machine": metrics["machine"], "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(table(result))
    return 0


def table(result: dict) -> str:
    """The ablation as a Markdown table (docs are generated from the JSON with it)."""
    lines = [
        f"IRNetResNet20 on {result['dataset']}, {result['epochs']} epochs, batch "
        f"{result['batch_size']}, {result['machine']}",
        "",
        "| variant | Libra-PB | EDE | top-1 | top-5 | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['variant']} | {'yes' if r['libra_pb'] else 'no'} | {'yes' if r['ede'] else 'no'} "
            f"| {r['top1']:.2%} | {r['top5']:.2%} | {r['wall_time_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
