"""One screen per module; each is a mode of the app (F2–F6) except the modal dialogs."""
