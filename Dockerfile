# The app for a team server (compose.yaml): the Playground with its main dependencies and login
# (the team extra). No local model: a team points it at SGP or its own OpenAI-compatible servers
# (install the sandbox extra too for the local model; llama-cpp-python compiles for minutes).
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir ".[team]"
EXPOSE 8501
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", \
     "--browser.gatherUsageStats=false"]
