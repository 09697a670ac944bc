#!/usr/bin/env python
"""moto's server, with fixes for emulator bugs that would otherwise crash it on calls the rack
makes. Each fix names the bug; none changes what AWS would answer.

1. moto 5.2.5 stores the UserData of a launch template version made by
   CreateLaunchTemplateVersion as a plain string, then asserts it is a Base64EncodedString when an
   Auto Scaling group launches from that version: every scale-out after a rack update answered 500.
   AWS accepts and uses that version. The fix wraps the string as moto does for
   CreateLaunchTemplate.
2. moto 5.2.5 snapshots a launch template's tags when it is created, so DescribeLaunchTemplates
   never shows tags added later with CreateTags or removed with DeleteTags (DescribeTags does).
   AWS shows the current tags. The fix reads them from moto's tag store on every describe.
"""

from __future__ import annotations

import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates as _launch_templates

_original_user_data = _launch_templates.LaunchTemplateVersion.user_data.fget


def _user_data(self):
    value = self.data.get("UserData")
    if isinstance(value, str):
        self.data["UserData"] = Base64EncodedString(value)
    return _original_user_data(self)


_launch_templates.LaunchTemplateVersion.user_data = property(_user_data)


def _current_tags(self):
    return self.get_tags()


def _ignore_snapshot(self, value):
    """LaunchTemplate.__init__ assigns the snapshot; the property keeps reading the store."""


_launch_templates.LaunchTemplate.tags = property(_current_tags, _ignore_snapshot)


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
