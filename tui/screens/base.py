"""What every section screen shares: the navigation bar, the footer, and forwarding worker failures to the
app's single error display."""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker


class SectionScreen(Screen):
    SECTION = ""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.app.show_error(event.worker.error, event.worker.description or event.worker.name)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Reset whatever the failed job had put in a busy state."""

    def should_stop(self) -> bool:
        """For thread workers: the user cancelled this job or is quitting the app."""
        return get_current_worker().is_cancelled or self.app.stopping.is_set()

    def on_screen_resume(self) -> None:
        if getattr(self, "_seen_version", None) != self.app.data_version:
            self._seen_version = self.app.data_version
            self.reload()

    def reload(self) -> None:
        """Re-read what the screen shows from the stores (called when shown after something changed)."""
