"""The application on top of the studies: the ``popnas-harness`` command (:mod:`harness.app.cli`), its
structured configuration (:mod:`harness.app.config`), the experiments a job runs
(:mod:`harness.app.experiments`), sweeps and their aggregate (:mod:`harness.app.sweep`) and the main
job's runner (:mod:`harness.app.paper`).

Nothing below this package (the core library in ``harness``, ``backends``, ``ablations``) imports it;
``tests/test_layering.py`` checks that (docs/architecture.md).
"""
