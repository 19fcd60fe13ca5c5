import sys

from cams_webhook_operator.cli import main

sys.exit(main())
