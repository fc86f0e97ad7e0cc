from __future__ import annotations

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Hypotheses, experiments and learnings"

    def ready(self) -> None:
        from behaviour import services as behaviour_services
        from events import backup

        from . import hooks, services  # noqa: F401  services registers "experiment_analyze"

        hooks.register_erasure_hook()
        # Uploaded assignment tables are files the backup copies (and a restore relocates).
        backup.register_path_fields("experiments.Experiment", "assignments_file")
        # Behaviour discovery proposes exploratory hypotheses through this app.
        behaviour_services.HYPOTHESIS_PROPOSERS.append(hooks.hypothesis_from_behaviour)
