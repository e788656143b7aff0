"""nmkit's library: importable without typer or rich; never prints or exits."""
