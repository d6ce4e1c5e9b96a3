import sys

from station.cli.main import main

if __name__ == "__main__":  # ``python -m station``; importing the module (tools that walk the package) runs nothing
    sys.exit(main())
