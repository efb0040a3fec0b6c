"""Entry links and QR codes: `bottega links` (issue 10 §5).

``links.entry_links`` builds, for a start code (``bot.model.start_codes``), the ``wa.me``, ``m.me`` and
``ig.me`` links of every channel that has an account configured (each channel's ``EntryLink`` part);
``links.qr`` writes each as a QR code, SVG and PNG. Inbound, ``bot.tutor.entry`` reads the code back.
"""
