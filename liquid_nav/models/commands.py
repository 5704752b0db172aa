"""``liquid-nav`` subcommand for models: ``model-info``."""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser("model-info", help="describe a checkpoint or a fresh policy config",
                                 description="Print the model config, parameter counts, wiring statistics "
                                             "and metadata of a checkpoint (or of a default policy).")
    info.add_argument("checkpoint", nargs="?", help="checkpoint file (omit to describe a fresh policy)")
    info.add_argument("--head", default="cfc_ncp", help="head of the fresh policy when no checkpoint is given")
    info.add_argument("--image-preset", default="default", choices=["default", "small"])
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(handler=_model_info)


def describe(policy, metadata: dict) -> dict:
    """Config, parameter counts, wiring statistics and non-finite tensors of a policy, as a JSON-ready dict."""
    from liquid_nav.models.checkpoint import non_finite_tensors

    counts = {name: sum(p.numel() for p in module.parameters())
              for name, module in (("perception", policy.perception), ("head", policy.head), ("total", policy))}
    info = {"config": policy.config.to_dict(), "state_size": policy.state_size, "parameters": counts,
            "metadata": metadata, "non_finite_tensors": non_finite_tensors(policy)}
    if policy.config.head in ("cfc_ncp", "ltc_ncp"):
        from liquid_nav.models.wiring import build_ncp

        sensory, neuron = build_ncp(policy.config.ncp, policy.config.feature_dim).synapse_counts()
        info["wiring"] = {"sensory_synapses": sensory, "neuron_synapses": neuron}
    return info


def _model_info(args: argparse.Namespace) -> int:
    from liquid_nav.models.checkpoint import CheckpointError, load_checkpoint
    from liquid_nav.models.policy import ConfigError, Policy, PolicyConfig
    from liquid_nav.models.preprocessing import PreprocessingConfig

    if args.checkpoint:
        try:
            policy, metadata = load_checkpoint(args.checkpoint)
        except CheckpointError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    else:
        try:
            config = PolicyConfig(head=args.head, preprocessing=PreprocessingConfig.preset(args.image_preset))
        except ConfigError as error:
            print(f"error: --head {args.head!r}: {error}", file=sys.stderr)
            return 1
        policy, metadata = Policy.from_config(config), {}
    info = describe(policy, metadata)
    for tensor in info["non_finite_tensors"]:
        print(f"warning: {args.checkpoint}: non-finite weights (the backends refuse to fly them): {tensor}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    config = info["config"]
    pre = config["preprocessing"]
    print(f"head: {config['head']}   state size: {info['state_size']}")
    print(f"input: {pre['height']}x{pre['width']} {pre['channel_order']}, mean {pre['mean']}, var {pre['var']}")
    print("parameters: " + ", ".join(f"{k} {v:,}" for k, v in info["parameters"].items()))
    if "wiring" in info:
        print(f"wiring: {info['wiring']['sensory_synapses']} sensory + {info['wiring']['neuron_synapses']} "
              f"neuron-to-neuron synapses ({config['ncp']})")
    print(f"time_scale: {config['time_scale']} per second   output_scale: {config['output_scale']}")
    if info["metadata"]:
        print("metadata: " + json.dumps(info["metadata"], sort_keys=True))
    return 0
