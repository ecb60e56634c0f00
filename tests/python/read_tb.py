"""Reads a TensorBoard log directory with the real `tensorboard` package and prints JSON.

Used by tests/tensorboard_python.rs: what EventAccumulator sees per run (scalars,
histograms, text), and what the HParams dashboard's backend lists (experiment columns,
session groups with hparams, status and final metric values).
"""

import json
import os
import sys

from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import io_wrapper
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import get_experiment
from tensorboard.plugins.hparams import hparams_plugin
from tensorboard.plugins.hparams import list_session_groups
from tensorboard.util import tensor_util


def hparam_value(v):
    kind = v.WhichOneof("kind")
    return getattr(v, kind) if kind else None


def main(logdir):
    runs = {}
    for run_dir in sorted(io_wrapper.GetLogdirSubdirectories(logdir)):
        run = os.path.relpath(run_dir, logdir)
        # size_guidance 0: keep every event, not a reservoir sample.
        acc = event_accumulator.EventAccumulator(run_dir, size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.HISTOGRAMS: 0,
            event_accumulator.TENSORS: 0,
        })
        acc.Reload()
        tags = acc.Tags()
        texts = {}
        for tag in tags["tensors"]:
            meta = acc.SummaryMetadata(tag)
            if meta.plugin_data.plugin_name != "text":
                continue
            texts[tag] = [
                [e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode()]
                for e in acc.Tensors(tag)
            ]
        runs[run] = {
            "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
            "histograms": {
                t: [
                    {
                        "step": e.step,
                        "min": e.histogram_value.min,
                        "max": e.histogram_value.max,
                        "num": e.histogram_value.num,
                        "sum": e.histogram_value.sum,
                        "bucket_limit": list(e.histogram_value.bucket_limit),
                        "bucket": list(e.histogram_value.bucket),
                    }
                    for e in acc.Histograms(t)
                ]
                for t in tags["histograms"]
            },
            "texts": texts,
        }

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, logdir)
    tb_context = base_plugin.TBContext(
        logdir=logdir, multiplexer=mux, data_provider=provider
    )
    plugin = hparams_plugin.HParamsPlugin(tb_context)
    ctx = context.RequestContext()
    experiment = get_experiment.Handler(
        ctx, plugin._context, "", api_pb2.GetExperimentRequest()
    ).run()
    request = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[
            api_pb2.STATUS_UNKNOWN,
            api_pb2.STATUS_SUCCESS,
            api_pb2.STATUS_FAILURE,
            api_pb2.STATUS_RUNNING,
        ],
        start_index=0,
        slice_size=1000,
    )
    groups = list_session_groups.Handler(ctx, plugin._context, "", request).run()
    sessions = {}
    for group in groups.session_groups:
        for s in group.sessions:
            sessions[s.name] = {
                "hparams": {k: hparam_value(v) for k, v in group.hparams.items()},
                "status": api_pb2.Status.Name(s.status),
                "metrics": {m.name.tag: [m.training_step, m.value] for m in s.metric_values},
            }
    out = {
        "runs": runs,
        "hparams": {
            # How TensorBoard's core decides to show the HParams tab.
            "active": "hparams" in provider.list_plugins(ctx, experiment_id=""),
            "hparam_columns": sorted(h.name for h in experiment.hparam_infos),
            "metric_columns": sorted(m.name.tag for m in experiment.metric_infos),
            "sessions": sessions,
        },
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
