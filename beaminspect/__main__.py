from beaminspect.cli.app import run

run()
