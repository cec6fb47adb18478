"""The host side: plan cells, drive them, report. Never imports torch."""
