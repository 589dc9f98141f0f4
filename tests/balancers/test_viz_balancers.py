"""The balancer figures draw, with titles, labels and legends (rendered off-screen)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from balancers.balancer_helpers import alb_config, flow, request, response, tcp_connection  # noqa: E402

from osilab.balancers import compare  # noqa: E402
from osilab.viz.balancers import MODEL_COLOURS, decision_timeline, ladder, target_distribution  # noqa: E402

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def comparison():
    packets, messages = [], []
    no = 1
    for c in range(3):
        conn = tcp_connection(no, 50000 + c, t0=T0 + c, payloads=2)
        packets += conn
        for r in range(2):
            data = conn[3 + 4 * r]
            req = request(
                "/",
                index=r,
                on=flow(client_port=50000 + c),
                first=data.no,
                complete=data.no,
                time=data.time,
            )
            messages += [req, response(req, packet=data.no + 2)]
        no += len(conn)
    return packets, compare(packets, alb_config(), messages=messages)


def _texts(fig) -> tuple[str, str, str, list[str]]:
    ax = fig.axes[0]
    legend = ax.get_legend()
    return (
        ax.get_title(),
        ax.get_xlabel(),
        ax.get_ylabel(),
        [t.get_text() for t in legend.get_texts()] if legend else [],
    )


def test_target_distribution(comparison) -> None:
    _, result = comparison
    fig = target_distribution(result)
    title, xlabel, ylabel, legend = _texts(fig)
    assert title and xlabel == "target" and ylabel == "requests"
    assert any(t.startswith("NLB") for t in legend) and any(t.startswith("ALB") for t in legend)
    heights = sorted(round(p.get_height()) for p in fig.axes[0].patches)
    assert sum(heights) == 2 * len(result.rows)
    assert fig.axes[0].patches[0].get_facecolor()[:3] == pytest.approx(
        matplotlib.colors.to_rgb(MODEL_COLOURS["NLB"])
    )


def test_decision_timeline(comparison) -> None:
    _, result = comparison
    fig = decision_timeline(result)
    title, xlabel, ylabel, legend = _texts(fig)
    assert title and xlabel == "packet number" and ylabel == "target"
    assert legend == [
        f"NLB: {len(result.nlb.decisions)} decisions",
        f"ALB: {len(result.alb.decisions)} decisions",
    ]


def test_ladder_marks_both_decisions(comparison) -> None:
    packets, result = comparison
    first = [p for p in packets if 50000 in (p.src_port, p.dst_port)]
    row = result.rows[0]
    fig = ladder(
        first,
        nlb_decided_at=row.nlb_decided_at,
        alb_decided_at=[r.alb_decided_at for r in result.rows[:2]],
    )
    _, _, _, legend = _texts(fig)
    assert f"NLB decides (packet {row.nlb_decided_at})" in legend
    assert f"ALB decides (packet {row.alb_decided_at})" in legend
    assert fig.axes[0].get_title()
