"""Voice of the customer: surveys, feedback text classified into a factor tree with
sentiment, key-driver attribution and journey experience (highlight and darkest moments)."""
