from checker.cli.main import entry

entry()
