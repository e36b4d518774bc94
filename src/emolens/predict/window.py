"""A live window for `emolens predict --show`: each annotated picture or frame as it is analysed.

Tk (Python's own GUI toolkit) draws it, since the OpenCV emolens installs is the headless build (no `imshow`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from emolens.errors import EmolensError

if TYPE_CHECKING:  # Pillow's Tk support is imported once a picture is shown
    from PIL import ImageTk

# Room left around a picture shrunk to fit the screen (title bar, panels, task bar).
_SCREEN_MARGIN = 0.9


class LiveWindow:
    """One window showing pictures as they come; closing it, or pressing q or Escape, sets `closed`.

    Examples:
        >>> from emolens.predict import Recognizer
        >>> window = LiveWindow("emolens")                                   # doctest: +SKIP
        >>> for result in Recognizer().predict(0, stream=True):             # doctest: +SKIP
        ...     window.show(result.plot())
        ...     if window.closed:
        ...         break
        >>> window.close()                                                   # doctest: +SKIP

    Raises:
        EmolensError: there is no display to open a window on.
    """

    def __init__(self, title: str) -> None:
        import tkinter

        try:
            self.root = tkinter.Tk()
        except tkinter.TclError as error:
            raise EmolensError(
                f"--show needs a display to open a window on ({error}); leave it out, or use --out DIR."
            ) from error
        self.root.title(title)
        self.label = tkinter.Label(self.root)
        self.label.pack()
        self.closed = False
        self.shown = 0
        self.root.protocol("WM_DELETE_WINDOW", self._close_asked)
        for key in ("q", "<Escape>"):
            self.root.bind(key, lambda event: self._close_asked())
        self.largest = (
            int(self.root.winfo_screenwidth() * _SCREEN_MARGIN),
            int(self.root.winfo_screenheight() * _SCREEN_MARGIN),
        )
        self._photo: ImageTk.PhotoImage | None = None  # kept: Tk shows a picture only while it is referenced

    def _close_asked(self) -> None:
        self.closed = True

    def show(self, rgb: np.ndarray) -> None:
        """Shows an RGB uint8 picture (shrunk to fit the screen), and handles the window's events."""
        from PIL import Image, ImageTk

        if self.closed:
            return
        image = Image.fromarray(rgb)
        image.thumbnail(self.largest)  # only ever shrinks
        photo = self._photo = ImageTk.PhotoImage(image, master=self.root)
        self.label.configure(image=photo)
        self.shown += 1
        self.root.update()

    def close(self) -> None:
        self.closed = True
        self.root.destroy()
