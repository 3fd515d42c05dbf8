from audioclas.cli import run

run()
