"""``python -m daprplane``: the ``daprplane`` command, run by the interpreter that imports it.

``daprplane up`` starts its components this way, so they run with exactly the installation
(virtualenv, plugins) the supervisor itself runs from, whatever ``PATH`` says.
"""

from daprplane.core.cli import main

if __name__ == "__main__":
    main()
