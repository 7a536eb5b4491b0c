"""The edgerag terminal UI (Textual): chat, library, models, evaluation and finetuning over the edgerag library.

Nothing in `edgerag/` imports this package. Screens call one library function each, in workers; the app is the
single place errors are shown. `edgerag tui` and `python -m tui` both call `tui.app.run()`.
"""
