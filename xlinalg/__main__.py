"""``python -m xlinalg``: which kernel layer runs (:func:`xlinalg.show_config`)."""

import xlinalg

xlinalg.show_config()
