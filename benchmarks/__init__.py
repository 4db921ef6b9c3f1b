"""Measured speed, kept outside the model package: the code that measures and the results it wrote.

- `rollout_speed`: one rollout of a tokenizer against the official way of running it, per device
  and precision (`python -m benchmarks.rollout_speed --suite` -> `cpu_results.md`/`.json`; the
  bundled model alone -> `bundled_cpu.md`/`.json`), with `operator_profile` (where the time goes,
  per operator, against the FLOPs it should take), `timing` (medians of repeats, the machine's
  measured matmul peak) and `speed_tables` (its rows and Markdown tables, shared with `karl_vs_alit`).
- `restructure_ab_cpu.md`: the bundled model before and after issue 14's restructuring (same machine, one session).
- `dataset_throughput`: `encode-dataset` end to end against the official way
  (`python -m benchmarks.dataset_throughput` -> `dataset_cpu.md`/`.json`).
- The app's latency and load are measured through its HTTP API by `app_latency` and `app_soak`
  (its simulated visitors in `soak_visitors`; -> `app_soak_cpu*.md`).
"""
