"""``python -m linlens``: the same command line as ``linlens``."""

from linlens.cli import main

if __name__ == "__main__":
    main()
