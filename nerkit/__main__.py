"""``python -m nerkit``: the command line, so that ``accelerate launch -m nerkit train ...`` works."""

from nerkit_cli.main import main

if __name__ == "__main__":
    main()
