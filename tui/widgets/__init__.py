"""Widgets, one class per module. Each declares the messages it sends."""
