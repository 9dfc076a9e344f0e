#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/: one platform overview and one per service.

    python3 deploy/observability/grafana/generate.py

The JSON is committed; run this after changing a panel here. `cargo xtask lint-deploy` checks
that every query uses only metric names the services export.
"""

import json
import pathlib

SERVICES = [
    "gateway", "auth", "product", "order-payment", "appointment",
    "content", "customer", "notification", "analytics",
]
PROBES = '/health|/ready|/metrics'
OUT = pathlib.Path(__file__).parent / "dashboards"


def panel(title, exprs, unit="short", kind="timeseries", legend="{{job}}"):
    if isinstance(exprs, str):
        exprs = [(exprs, legend)]
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": fmt}
            for i, (expr, fmt) in enumerate(exprs)
        ],
    }


def layout(panels):
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8}
    return panels


def dashboard(uid, title, panels, tags):
    return {
        "uid": uid,
        "title": title,
        "tags": ["lomash", *tags],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "annotations": {"list": []},
        "panels": layout(panels),
    }


def overview():
    sel = f'route!~"{PROBES}"'
    return dashboard("lomash-overview", "Lomash Wood — platform overview", [
        panel("Requests per second", f"sum by (job) (rate(http_requests_total{{{sel}}}[$__rate_interval]))", "reqps"),
        panel("5xx ratio", f'sum by (job) (rate(http_requests_total{{{sel}, status=~"5.."}}[$__rate_interval])) / sum by (job) (rate(http_requests_total{{{sel}}}[$__rate_interval]))', "percentunit"),
        panel("p99 latency", f"histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "s"),
        panel("Targets up", 'sum by (job) (up{job=~"' + "|".join(SERVICES) + '"})', "short"),
        panel("Not ready (/ready 503 per second)", 'sum by (job) (rate(http_requests_total{route="/ready", status="503"}[$__rate_interval]))', "reqps"),
        panel("Outbox: oldest pending event", "max by (job) (outbox_oldest_pending_age_seconds)", "s"),
        panel("Consumer lag", "max by (job, topic) (event_consumer_lag_seconds)", "s", legend="{{job}} {{topic}}"),
        panel("Events dead-lettered", 'sum by (job, topic) (increase(events_consumed_total{outcome="dead_lettered"}[$__rate_interval]))', "short", legend="{{job}} {{topic}}"),
        panel("Gateway: Redis fallback (rate limiting in-process)", "sum(rate(gateway_rate_limit_fallback_total[$__rate_interval]))", "ops", legend="fallback"),
        panel("Gateway: upstream errors", "sum by (upstream, status) (rate(gateway_upstream_errors_total[$__rate_interval]))", "ops", legend="{{upstream}} {{status}}"),
        panel("Postgres connections in use", "max by (job) (db_pool_connections - db_pool_idle_connections) / max by (job) (db_pool_max_connections)", "percentunit"),
    ], ["overview"])


def service(name):
    job = f'job="{name}"'
    sel = f'{job}, route!~"{PROBES}"'
    panels = [
        panel("Requests per second by route", f"sum by (route) (rate(http_requests_total{{{sel}}}[$__rate_interval]))", "reqps", legend="{{route}}"),
        panel("Responses by status", f"sum by (status) (rate(http_requests_total{{{sel}}}[$__rate_interval]))", "reqps", legend="{{status}}"),
        panel("Latency p50 / p99", [
            (f"histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "p50"),
            (f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "p99"),
        ], "s"),
        panel("p99 latency by route", f"histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "s", legend="{{route}}"),
        panel("Readiness (/ready answers)", f'sum by (status) (rate(http_requests_total{{{job}, route="/ready"}}[$__rate_interval]))', "reqps", legend="{{status}}"),
        panel("Pods up", f"sum(up{{{job}}})", "short", kind="stat", legend="pods"),
    ]
    if name == "gateway":
        panels += [
            panel("Upstream errors", "sum by (upstream, status) (rate(gateway_upstream_errors_total[$__rate_interval]))", "ops", legend="{{upstream}} {{status}}"),
            panel("Redis fallback", "sum(rate(gateway_rate_limit_fallback_total[$__rate_interval]))", "ops", legend="fallback"),
        ]
    else:
        panels += [
            panel("Postgres pool", [
                (f"sum(db_pool_connections{{{job}}})", "open"),
                (f"sum(db_pool_idle_connections{{{job}}})", "idle"),
                (f"max(db_pool_max_connections{{{job}}})", "max per pod"),
            ]),
            panel("Outbox", [
                (f"max(outbox_pending_events{{{job}}})", "pending"),
                (f"sum(rate(outbox_published_total{{{job}}}[$__rate_interval]))", "published/s"),
                (f"sum(rate(outbox_publish_failures_total{{{job}}}[$__rate_interval]))", "failures/s"),
            ]),
            panel("Outbox: oldest pending event", f"max(outbox_oldest_pending_age_seconds{{{job}}})", "s", legend="age"),
            panel("Events consumed by outcome", f"sum by (outcome) (rate(events_consumed_total{{{job}}}[$__rate_interval]))", "ops", legend="{{outcome}}"),
            panel("Consumer lag by topic", f"max by (topic) (event_consumer_lag_seconds{{{job}}})", "s", legend="{{topic}}"),
            panel("Event handler p99 by topic", f"histogram_quantile(0.99, sum by (topic, le) (rate(event_handler_seconds_bucket{{{job}}}[$__rate_interval])))", "s", legend="{{topic}}"),
            panel("Queue depth", f"max(event_consumer_queue_depth{{{job}}})", "short", legend="messages"),
        ]
    return dashboard(f"lomash-{name}", f"Lomash Wood — {name}", panels, ["service", name])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    boards = {"lomash-overview.json": overview()}
    for name in SERVICES:
        boards[f"lomash-{name}.json"] = service(name)
    for file, board in boards.items():
        (OUT / file).write_text(json.dumps(board, indent=2) + "\n")


if __name__ == "__main__":
    main()
