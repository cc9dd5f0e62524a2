from beaminspect.cli.fast import run

run()
