"""The `hardwire` command line: main.py dispatches to one module per command; args.py holds what they share."""
